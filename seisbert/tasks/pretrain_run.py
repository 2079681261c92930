"""``task=mlm`` / ``task=mlm_nsp``: pretrain the base model on cached token sequences."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from seisbert.analysis.mlm_confusion import masked_confusion, plot_confusions, time_order
from seisbert.config import build
from seisbert.data.sequences import TokenDataModule
from seisbert.pipeline import TokenSet
from seisbert.tasks.common import (fit_best, log_artifact, log_image, model_artifact_dir, publish_checkpoint,
                                   save_metrics, scalar_metrics)
from seisbert.tasks.pretrain import PretrainModule

log = logging.getLogger(__name__)

CONFUSION_MODES = ("first_half", "second_half", "random")


def build_pretraining(cfg: DictConfig, tset: TokenSet):
    params = build(cfg.task.params, "task.params")
    model = build(cfg.model, "model")
    if model.vocab_size != tset.vocab_size:
        raise ValueError(f"model.vocab_size={model.vocab_size} but the tokens have K={tset.vocab_size}")
    dm = TokenDataModule(tset.tokens, tset.metadata, tset.vocab_size, params.batch_size,
                         pairs=params.source_linking, sl_classes=params.sl_classes, seed=cfg.seed,
                         num_workers=params.num_workers)
    module = PretrainModule(dataclasses.asdict(model), dataclasses.asdict(params), tset.digest,
                            dm.step_mode().tolist())
    return module, dm


def run(cfg: DictConfig, artifacts: dict) -> dict:
    trainer, module, dm, tset, best, best_score = fit_best(cfg, build_pretraining, artifacts)
    metrics = scalar_metrics(trainer.test(module, dm)) if cfg.get("test_after_fit", True) else {}
    if best_score is not None:  # what train.py returns to a sweeper (the task's monitor)
        metrics[cfg.task.monitor] = best_score
    if trainer.is_global_zero:
        figure = confusion_figure(cfg, module, dm)
        log_image(trainer, "test/mlm_confusion", figure)
        if best:
            target = model_artifact_dir(cfg, tset.digest)
            metrics["checkpoint"] = str(target / "model.ckpt")
            metrics["output_dir"] = str(cfg.paths.output_dir)
            publish_checkpoint(best, target, {"tokens": tset.digest, "vocab_size": tset.vocab_size,
                                              "task": cfg.task.name, "metrics": metrics})
            log_artifact(trainer, f"{cfg.task.name}-model", "model", target)
            log_artifact(trainer, "tokenizer", "tokenizer", Path(artifacts["tokens"]) / "tokenizer")
        save_metrics(cfg, metrics)
    return metrics


@torch.no_grad()
def confusion_figure(cfg: DictConfig, module: PretrainModule, dm: TokenDataModule) -> Path:
    """Masked-token confusion matrices on the test split: first half, second half, random."""
    module.eval()
    mats, accs = {}, {}
    for mode in CONFUSION_MODES:
        mats[mode] = masked_confusion(module, dm.test_dataloader(), mode)
        accs[mode] = float(np.trace(mats[mode]) / max(1, mats[mode].sum()))
    log.info("masked-token accuracy (all selected masked) by regime: %s",
             ", ".join(f"{m} {a:.3f}" for m, a in accs.items()))
    order = time_order(np.asarray(dm.tokens)[dm.rows["train"]], module.cfg.vocab_size)
    return plot_confusions(mats, accs, Path(cfg.paths.output_dir) / "mlm_confusion.png", order)
