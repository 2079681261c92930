"""Shared fixtures: the real Hydra config, composed and shrunk (lightning-hydra-template style)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

# Small enough for seconds, large enough that every split has several events of each class.
TINY = ["data.n_events=80", "tokenizer.vocab_size=16", "model=tiny", "logger=none",
        "trainer.max_epochs=2", "trainer.enable_progress_bar=false", "~callbacks.progress_bar"]


def compose_cfg(tmp: Path, overrides=(), cache: Path | None = None) -> DictConfig:
    """The project's train.yaml with the tiny overrides, writing under ``tmp``."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, *overrides])
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache or tmp / "cache")
        cfg.paths.output_dir = str(tmp / "out")
    return cfg


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads; with two workers on two cores (or any other
    load) OpenMP's spinning threads slow a step 20x (4 ms -> 90 ms measured)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One artifact cache for the session: the tiny dataset is generated once per worker."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def tiny_cfg(tmp_path, shared_cache):
    def make(*overrides):
        return compose_cfg(tmp_path, overrides, shared_cache)
    return make
