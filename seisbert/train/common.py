"""Shared training plumbing: trainer, loggers, callbacks, figures and checkpoints."""

from __future__ import annotations

import inspect
import json
import logging
import random
from pathlib import Path

import hydra.utils
import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from seisbert.logs import EpochLog
from seisbert.pipeline import TokenSet

log = logging.getLogger(__name__)


def _instantiate_all(nodes) -> list:
    # a node without _target_ is a leftover of an experiment's override (e.g. W&B tags
    # with logger=csv): nothing to build
    return [
        hydra.utils.instantiate(n)
        for n in (nodes or {}).values()
        if n is not None and "_target_" in n
    ]


def build_loggers(cfg: DictConfig) -> list:
    return _instantiate_all(cfg.get("logger"))


def build_callbacks(cfg: DictConfig) -> list:
    return _instantiate_all(cfg.get("callbacks"))


def log_config(loggers: list, cfg: DictConfig) -> None:
    """Send the composed config (every group, resolved) to each logger as hyperparameters.

    The module's own hyperparameters only cover the model and the task; a dashboard needs
    the data, features, tokenizer and trainer settings too to compare runs.
    """
    params = OmegaConf.to_container(cfg, resolve=True)
    for lg in loggers:
        lg.log_hyperparams(params)


def rng_states() -> dict:
    """Global RNG states (Python, NumPy, torch CPU and CUDA), loadable with weights_only=True."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(state: dict) -> None:
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumableRNG(L.Callback):
    """Store the global RNG states in every checkpoint; restore them when training resumes.

    Lightning restores weights, optimizer, scheduler and loop counters but not the random
    streams, so after ``ckpt_path=last`` the MLM masks and dropout would differ from an
    uninterrupted run. The states are applied in ``on_train_start``: after the sanity
    check, before the first batch, where an uninterrupted run stands at its checkpoint.
    """

    def __init__(self):
        self._pending: dict | None = None

    def state_dict(self) -> dict:
        return rng_states()

    def load_state_dict(self, state_dict: dict) -> None:
        self._pending = state_dict

    def on_train_start(self, trainer, pl_module) -> None:
        if self._pending is not None:
            set_rng_states(self._pending)
            self._pending = None


def build_trainer(cfg: DictConfig, **overrides) -> L.Trainer:
    loggers = build_loggers(cfg)
    log_config(loggers, cfg)
    callbacks = build_callbacks(cfg) + [
        ResumableRNG(),
        EpochLog(),
    ]  # EpochLog: a line per epoch off a terminal
    if not loggers:  # nothing to send learning rates to (logger=none)
        callbacks = [c for c in callbacks if type(c).__name__ != "LearningRateMonitor"]
    return hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, **overrides
    )


def resolve_ckpt(cfg: DictConfig) -> str | None:
    """``ckpt_path=last`` resumes this run folder's last checkpoint when there is one."""
    ckpt = cfg.get("ckpt_path")
    if ckpt != "last":
        return ckpt
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    if not last.exists():
        log.warning("ckpt_path=last but %s does not exist; starting from scratch", last)
        return None
    log.info("resuming from %s", last)
    return str(last)


def log_image(trainer: L.Trainer, key: str, path: Path) -> None:
    """Send a saved figure to every logger that takes images (W&B, TensorBoard)."""
    for lg in trainer.loggers:
        if hasattr(lg, "log_image"):
            lg.log_image(key=key, images=[str(path)])
        elif hasattr(getattr(lg, "experiment", None), "add_image"):
            import matplotlib.image

            lg.experiment.add_image(key, matplotlib.image.imread(path), dataformats="HWC")
            lg.experiment.flush()  # the run may already be finalized: write it now


def log_artifact(trainer: L.Trainer, name: str, kind: str, path: Path) -> None:
    """Store a file or folder as a W&B artifact (offline runs keep it locally)."""
    for lg in trainer.loggers:
        if type(lg).__name__ == "WandbLogger":
            import wandb

            art = wandb.Artifact(name=name, type=kind)
            (art.add_dir if Path(path).is_dir() else art.add_file)(str(path))
            lg.experiment.log_artifact(art)


def save_metrics(cfg: DictConfig, metrics: dict, name: str = "metrics.json") -> Path:
    path = Path(cfg.paths.output_dir) / name
    path.write_text(json.dumps(metrics, indent=2, default=float))
    return path


def scalar_metrics(results: list[dict]) -> dict:
    return {k: float(v) for r in results for k, v in r.items()}


def best_callback(trainer: L.Trainer):
    """The checkpoint callback that monitors a metric (the best model), if any: the other
    one writes ``last.ckpt`` at every validation."""
    monitoring = [cb for cb in trainer.checkpoint_callbacks if cb.monitor is not None]
    return monitoring[0] if monitoring else None


def monitored_score(trainer: L.Trainer) -> float | None:
    """Best value of the task's monitored metric (the checkpoint callback's), if any."""
    cb = best_callback(trainer)
    score = None if cb is None else cb.best_model_score
    return None if score is None else float(score)


def fit_safely(trainer: L.Trainer, module, ckpt_path: str | None, **data) -> None:
    """``trainer.fit``, resuming from ``ckpt_path`` with ``weights_only=True`` (tensors and
    plain containers only, no pickled code); ``data``: ``datamodule=`` or the dataloaders.
    Lightning < 2.6 has no such argument; there torch >= 2.6 makes it torch.load's default."""
    kwargs = (
        {"weights_only": True}
        if "weights_only" in inspect.signature(trainer.fit).parameters
        else {}
    )
    trainer.fit(module, ckpt_path=ckpt_path, **data, **kwargs)


def fit_best(cfg: DictConfig, build, artifacts: dict):
    """Seed, build ``(module, datamodule)`` from the tokens artifact, fit (resuming if asked),
    and reload the best checkpoint. Returns trainer, module, datamodule, tokens, best path
    and the best monitored score."""
    L.seed_everything(cfg.seed, workers=True)
    tset = TokenSet.load(artifacts["tokens"])
    module, dm = build(cfg, tset)
    trainer = build_trainer(cfg)
    fit_safely(trainer, module, resolve_ckpt(cfg), datamodule=dm)
    cb = best_callback(trainer)
    best = cb.best_model_path if cb is not None else ""
    if best:
        module = type(module).load_from_checkpoint(best, weights_only=True)
    return trainer, module, dm, tset, best, monitored_score(trainer)
