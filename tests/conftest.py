"""Shared fixtures: the real Hydra config, composed and shrunk (lightning-hydra-template style)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from seisbert.train.schemas import register

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")
register()  # the config dataclasses' defaults, which the YAML presets extend

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

# Small enough for seconds, large enough that every split has several events of each class.
# "++callbacks.progress_bar=null", not "~": debug=fdr composes no callbacks to delete from.
TINY = [
    "data.n_events=80",
    "tokenizer.vocab_size=16",
    "model=tiny",
    "logger=none",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "++callbacks.progress_bar=null",
]


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


@pytest.fixture(scope="session")
def easy_tokens():
    """Token sets a working model must solve, for "beats its trivial baseline" tests.

    ``make("class")``: earthquakes draw each window's token from 0..9, blasts from 6..15,
    so the bag of tokens separates the classes; the constant predictor scores balanced
    accuracy 0.5. ``make("copy")``: every record repeats one random token, so a masked
    token equals every visible one; 1/K and the per-step mode score about 1/K.
    Returns ``(tokens (N, T) int16, metadata)`` with splits by event, as the pipeline's.
    """

    def make(
        kind: str,
        n_events: int = 60,
        stations: int = 5,
        vocab_size: int = 16,
        steps: int = 90,
        seed: int = 0,
    ):
        rng = np.random.default_rng(seed)
        event = np.repeat(np.arange(n_events), stations)
        event_label = rng.integers(0, 2, n_events)
        event_split = np.array(["train", "dev", "test"])[rng.choice(3, n_events, p=[0.6, 0.2, 0.2])]
        label = event_label[event]
        if kind == "class":
            low = vocab_size * 5 // 8  # the classes share 6..9 of 16 tokens
            tokens = rng.integers(0, low, (len(event), steps)) + (vocab_size - low) * label[:, None]
        elif kind == "copy":
            tokens = np.repeat(rng.integers(0, vocab_size, (len(event), 1)), steps, axis=1)
        else:
            raise ValueError(f"kind={kind!r}; choose 'class' or 'copy'")
        meta = pd.DataFrame(
            {
                "event_id": event.astype(str),
                "station_id": (np.arange(len(event)) % stations).astype(str),
                "label": label,
                "split": event_split[event],
            }
        )
        return tokens.astype(np.int16), meta

    return make
