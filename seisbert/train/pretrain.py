"""``task=mlm`` / ``task=mlm_nsp``: pretrain the base model on cached token sequences."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from seisbert.analysis.mlm_confusion import masked_confusion, plot_confusions, time_order
from seisbert.artifacts.paths import model_artifact_dir, publish_checkpoint
from seisbert.config import build
from seisbert.data.sequences import TokenDataModule, step_mode_of
from seisbert.logs import log_summary
from seisbert.model.encoder import EncoderConfig
from seisbert.model.targets import RandomProjectionTarget
from seisbert.pipeline import TokenSet
from seisbert.tasks.pretrain import PretrainConfig, PretrainModule
from seisbert.train.common import fit_best, log_artifact, log_image, save_metrics, scalar_metrics

log = logging.getLogger(__name__)

CONFUSION_MODES = ("first_half", "second_half", "random")


def load_windows(tset: TokenSet) -> np.ndarray:
    """The (N, T, F) scaled log-PSD windows beside the tokens (the artifact's features.npy link)."""
    return np.load(Path(tset.path) / "features.npy", mmap_mode="r")


def with_n_features(model: EncoderConfig, windows: np.ndarray) -> EncoderConfig:
    """``model.n_features`` from the windows; a value set by hand must agree with them."""
    F = int(windows.shape[-1])
    if model.n_features is not None and model.n_features != F:
        raise ValueError(
            f"model.n_features={model.n_features} but the features artifact has F={F} bins per "
            f"window (features.channels and fmin_hz..fmax_hz decide F); leave it null"
        )
    return dataclasses.replace(model, n_features=F)


def needs_windows(model: EncoderConfig, params: PretrainConfig) -> bool:
    return model.input != "tokens" or params.target != "kmeans" or params.regresses


def target_step_mode(
    dm: TokenDataModule, model: EncoderConfig, params: PretrainConfig, stats: dict | None
) -> list | None:
    """Per-time-step most frequent training target (T,): k-means ids or random-projection codes."""
    if params.target == "kmeans":
        return dm.step_mode().tolist()
    if params.target == "random_projection":
        rp = RandomProjectionTarget(
            model.n_features,
            model.vocab_size,
            params.code_dim,
            params.target_seed,
            stats["mean"],
            stats["std"],
        )
        codes = rp(torch.from_numpy(np.asarray(dm.features[dm.rows["train"]]))).numpy()  # (n, T)
        return step_mode_of(codes, model.vocab_size).tolist()
    return None


def build_pretraining(cfg: DictConfig, tset: TokenSet):
    params = build(cfg.task.params, "task.params")
    model = build(cfg.model, "model")
    if model.vocab_size != tset.vocab_size:
        raise ValueError(
            f"model.vocab_size={model.vocab_size} but the tokens have K={tset.vocab_size}"
        )
    windows = load_windows(tset) if needs_windows(model, params) else None
    if windows is not None:
        model = with_n_features(model, windows)
    tokens, metadata, windows = tset.pretraining_view(windows)  # + the unlabeled pool, if any
    dm = TokenDataModule(
        tokens,
        metadata,
        tset.vocab_size,
        params.batch_size,
        pairs=params.source_linking,
        sl_classes=params.sl_classes,
        seed=cfg.seed,
        num_workers=params.num_workers,
        features=windows,
    )
    stats = dm.window_stats() if windows is not None else None  # training split only
    module = PretrainModule(
        dataclasses.asdict(model),
        dataclasses.asdict(params),
        tset.tokenizer_digest,
        target_step_mode(dm, model, params, stats),
        stats,
    )
    return module, dm


def pretrain(cfg: DictConfig, artifacts: dict) -> dict:
    trainer, module, dm, tset, best, best_score = fit_best(cfg, build_pretraining, artifacts)
    metrics = (
        scalar_metrics(trainer.test(module, dm, verbose=False))
        if cfg.get("test_after_fit", True)
        else {}
    )
    if best_score is not None:  # what train.py returns to a sweeper (the task's monitor)
        metrics[cfg.task.monitor] = best_score
    # what it learnt from: the labelled set's train split plus the unlabeled pool (the pool-size
    # curve's x)
    metrics["pool_records"] = 0 if tset.pool_tokens is None else len(tset.pool_tokens)
    metrics["pretrain_records"] = int(len(dm.rows["train"]))
    if trainer.is_global_zero:
        Path(cfg.paths.output_dir).mkdir(parents=True, exist_ok=True)
        if module.p.target == "kmeans":  # the paper's Fig. 6 is over k-means tokens
            log_image(trainer, "test/mlm_confusion", confusion_figure(cfg, module, dm))
        if best:
            target = model_artifact_dir(cfg, tset.digest)
            metrics["checkpoint"] = str(target / "model.ckpt")
            metrics["output_dir"] = str(cfg.paths.output_dir)
            publish_checkpoint(
                best,
                target,
                {
                    "tokens": tset.digest,
                    "vocab_size": tset.vocab_size,
                    "task": cfg.task.name,
                    "input": module.cfg.input,
                    "arch": module.cfg.arch,
                    "n_features": module.cfg.n_features,
                    "target": module.p.target,
                    "metrics": metrics,
                },
                verify=cfg.paths.verify,
            )
            log_artifact(trainer, f"{cfg.task.name}-model", "model", target)
            log_artifact(trainer, "tokenizer", "tokenizer", Path(artifacts["tokens"]) / "tokenizer")
        save_metrics(cfg, metrics)
        scores = {
            k: v
            for k, v in metrics.items()
            if k.startswith(("val/", "test/")) and isinstance(v, float) and "baseline" not in k
        }
        log_summary(
            f"{cfg.task.name} finished",
            {
                "run folder": str(cfg.paths.output_dir),
                "base model": metrics.get("checkpoint", "not published (no best checkpoint)"),
                "records": f"{metrics['pretrain_records']} labelled-set train"
                f" + {metrics['pool_records']} pool",
                **{k: f"{v:.4f}" for k, v in sorted(scores.items())[:8]},
            },
        )
    return metrics


@torch.no_grad()
def confusion_figure(cfg: DictConfig, module: PretrainModule, dm: TokenDataModule) -> Path:
    """Masked-token confusion matrices on the test split: first half, second half, random."""
    module.eval()
    mats, accs = {}, {}
    for mode in CONFUSION_MODES:
        mats[mode] = masked_confusion(module, dm.test_dataloader(), mode)
        accs[mode] = float(np.trace(mats[mode]) / max(1, mats[mode].sum()))
    log.info(
        "masked-token accuracy (all selected masked) by regime: %s",
        ", ".join(f"{m} {a:.3f}" for m, a in accs.items()),
    )
    order = time_order(np.asarray(dm.tokens)[dm.rows["train"]], module.cfg.vocab_size)
    return plot_confusions(mats, accs, Path(cfg.paths.output_dir) / "mlm_confusion.png", order)
