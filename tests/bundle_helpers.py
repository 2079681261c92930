"""A tiny fine-tuned classifier and its bundle, trained once per test session and worker;
shared by tests/test_bundle.py, test_predict.py and test_seisbench_model.py."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from conftest import CONFIG_DIR, compose_cfg
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

FINETUNE = ["experiment=scratch", "trainer.max_epochs=1", "task.params.masked_eval=false"]


@functools.lru_cache(maxsize=2)
def trained(root: str, *overrides: str) -> dict:
    """Fine-tune from scratch on the tiny synthetic set; paths of bundle, checkpoint, tokens."""
    from seisbert.train.job import train_job

    cfg = compose_cfg(Path(root), [*FINETUNE, *overrides], Path(root) / "cache")
    metrics = train_job(cfg)
    out = Path(cfg.paths.output_dir)
    arts = {s: Path(p) for s, p in _artifacts(cfg).items()}
    return {
        "cfg": cfg,
        "metrics": metrics,
        "bundle": out / "model.bundle.safetensors",
        "checkpoint": out / "checkpoints" / "best.ckpt",
        **arts,
    }


def _artifacts(cfg: DictConfig) -> dict:
    from seisbert.artifacts.paths import stage_path

    return {s: stage_path(cfg, s) for s in ("records", "features", "tokens")}


def predict_cfg(out: Path, overrides=()) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("predict", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return cfg


def pipeline_probabilities(run: dict, rows: np.ndarray) -> np.ndarray:
    """P(blast) of tokens-artifact rows from the fine-tuning run's best checkpoint, fed
    through the training data path (RecordDataset: ids, segments and, for PSD inputs, windows)."""
    import torch
    from torch.utils.data import DataLoader

    from seisbert.data.sequences import RecordDataset, Specials
    from seisbert.pipeline import TokenSet
    from seisbert.tasks.finetune import FinetuneModule

    module = FinetuneModule.load_from_checkpoint(run["checkpoint"], weights_only=True).eval()
    tset = TokenSet.load(run["tokens"])
    windows = np.load(run["tokens"] / "features.npy") if module.cfg.input != "tokens" else None
    data = RecordDataset(
        tset.tokens, tset.metadata["label"].to_numpy(), rows, Specials(tset.vocab_size), windows
    )
    probs = []
    with torch.inference_mode():
        for batch in DataLoader(data, batch_size=64):
            logits = module(batch["ids"], batch["segments"], batch.get("psd"))
            probs.append(logits.softmax(-1)[:, 1].float().numpy())
    return np.concatenate(probs)
