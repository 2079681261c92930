"""``task=finetune``: classify earthquakes vs. blasts from a base model or from scratch."""

from __future__ import annotations

import dataclasses
import logging
import zipfile
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from seisbert.artifacts.paths import newest_published, quarantined
from seisbert.artifacts.pretrained import PREFIX, pretrained_path
from seisbert.bundle import encoder_from_bundle, is_bundle, write_run_bundle
from seisbert.config import build
from seisbert.data.records import CLASS_NAMES
from seisbert.data.sequences import TokenDataModule
from seisbert.data.subsets import labelled_rows
from seisbert.logs import log_summary
from seisbert.metrics import classification_metrics, collapse_warnings, plot_confusion, score_line
from seisbert.model.encoder import EncoderConfig
from seisbert.pipeline import TokenSet
from seisbert.tasks.finetune import (
    MASKED_EVALS,
    FinetuneConfig,
    FinetuneModule,
    masked_input_accuracy,
)
from seisbert.train.common import fit_best, log_image, save_metrics
from seisbert.train.pretrain import load_windows, with_n_features

log = logging.getLogger(__name__)


def _same_kind(info: dict, tset: TokenSet, model: EncoderConfig | None) -> bool:
    """A cached base model on these tokens with the run's input kind and architecture."""
    if info.get("tokens") != tset.digest:
        return False
    return model is None or (info.get("input", "tokens"), info.get("arch", "encoder")) == (
        model.input,
        model.arch,
    )


def find_base_checkpoint(
    cfg: DictConfig, params: FinetuneConfig, tset: TokenSet, model: EncoderConfig | None = None
) -> Path:
    """The explicit checkpoint, else the newest cached ``pretrain_task`` model on these tokens
    (and, given the run's ``model``, with its ``model.input`` and ``model.arch``)."""
    if params.checkpoint is not None:  # a path, or pretrained:<name> (its shipped base model)
        text = str(params.checkpoint)
        if text.startswith(PREFIX):
            return pretrained_path(text[len(PREFIX) :], "base")
        return Path(text)
    root = Path(cfg.paths.cache_dir) / params.pretrain_task
    found = newest_published(root, cfg.paths.verify, lambda info: _same_kind(info, tset, model))
    if found is None:
        kind = "" if model is None else f" with model.input={model.input}, model.arch={model.arch}"
        kept = quarantined(cfg.paths.cache_dir, params.pretrain_task)
        if kept:
            kind += (
                f" (base models that failed verification are kept, not deleted, in "
                f"{kept[0].parent}: {len(kept)} folder(s), each with its reason)"
            )
        raise FileNotFoundError(
            f"no pretrained '{params.pretrain_task}' model{kind} for tokens {tset.digest} under "
            f"{root}: run "
            f"`python train.py experiment={params.pretrain_task}` with the same "
            "data/features/tokenizer "
            f"settings first, set task.params.checkpoint, or use task.params.init=scratch"
        )
    return found / "model.ckpt"


def read_checkpoint(path: Path) -> dict:
    """A Lightning checkpoint read as plain tensors (no pickled code); ValueError naming the
    file when it is damaged or is not one."""
    try:
        with zipfile.ZipFile(path) as zf:  # torch.load itself skips the CRCs
            damaged = zf.testzip()
        if damaged is not None:
            raise ValueError(f"its member {damaged} fails its CRC-32")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged zip or a pickle stream raises many types
        raise ValueError(
            f"task.params.checkpoint={str(path)!r} cannot be read as a base model (a model.ckpt "
            f"written by pretraining, or a bundle): {type(err).__name__}: {str(err)[:200]}"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ValueError(
            f"task.params.checkpoint={str(path)!r} holds no state_dict and "
            "hyper_parameters: it is not a seisbert pretraining checkpoint"
        )
    return ckpt


def load_base(
    path: Path, tset: TokenSet, want: EncoderConfig | None = None
) -> tuple[EncoderConfig, dict]:
    """Encoder config and weights of a pretraining checkpoint.

    Refuses one trained on other tokens, and, given the run's model ``want``, one of
    another ``model.input``, ``model.arch`` or PSD window size (``n_features``).
    """
    if not Path(path).is_file():
        raise ValueError(f"task.params.checkpoint={str(path)!r} is not a file")
    if is_bundle(path):  # a model bundle: fine-tune it on one's own labels
        model, state, theirs = encoder_from_bundle(path)
    else:
        ckpt = read_checkpoint(path)
        model, theirs = (
            ckpt["hyper_parameters"]["model"],
            ckpt["hyper_parameters"].get("tokenizer_digest"),
        )
        state = {
            n[len("encoder.") :]: w
            for n, w in ckpt["state_dict"].items()
            if n.startswith("encoder.")
        }
    k = model["vocab_size"]
    if theirs != tset.tokenizer_digest or k != tset.vocab_size:
        raise ValueError(
            f"checkpoint {path} was pretrained on tokens {theirs} (K={k}) but this run's tokens "
            "are "
            f"{tset.tokenizer_digest} (K={tset.vocab_size}); reuse its tokenizer with "
            f"tokenizer.from_path=<its bundle or cache/tokens/{theirs}> or pretrain again"
        )
    base = EncoderConfig(**model)
    if want is not None:
        refuse_other_kind(path, base, want)
    return base, state


def refuse_other_kind(path: Path, base: EncoderConfig, want: EncoderConfig) -> None:
    """ValueError when the checkpoint's input kind, architecture or window size is not the run's."""
    for key in ("input", "arch"):
        if getattr(base, key) != getattr(want, key):
            raise ValueError(
                f"checkpoint {path} was pretrained with model.{key}={getattr(base, key)} but this "
                "run has "
                f"model.{key}={getattr(want, key)}; set model.{key}={getattr(base, key)} or "
                "pretrain a "
                f"model.{key}={getattr(want, key)} base model first"
            )
    if base.input != "tokens" and base.n_features != want.n_features:
        raise ValueError(
            f"checkpoint {path} reads PSD windows of n_features={base.n_features} bins but this "
            "run's "
            f"features have {want.n_features} (features.channels, fmin_hz..fmax_hz); use the "
            "features "
            f"it was pretrained on or pretrain again"
        )


def run_model(cfg: DictConfig, tset: TokenSet) -> tuple[EncoderConfig, np.ndarray | None]:
    """The run's ``model`` config and, for window inputs, the windows (sets ``n_features``)."""
    model = build(cfg.model, "model")
    if model.input == "tokens":
        return model, None
    windows = load_windows(tset)
    return with_n_features(model, windows), windows


def build_finetuning(cfg: DictConfig, tset: TokenSet):
    params = build(cfg.task.params, "task.params")
    rows = labelled_rows(tset.metadata, params.labels, params.subset_seed)
    model, windows = run_model(cfg, tset)
    dm = TokenDataModule(
        tset.tokens,
        tset.metadata,
        tset.vocab_size,
        params.batch_size,
        seed=cfg.seed,
        num_workers=params.num_workers,
        train_rows=rows,
        features=windows,
    )
    state = None
    if params.init == "pretrained":
        path = find_base_checkpoint(cfg, params, tset, model)
        base, state = load_base(path, tset, model)
        model = dataclasses.replace(
            base, pool=model.pool
        )  # the pooling is the new head's, not the base's
        log.info("fine-tuning from %s", path)
    y = tset.metadata["label"].to_numpy()[dm.rows["train"]]
    counts = np.bincount(y, minlength=2).astype(float)
    weight = (counts.sum() / (2 * np.maximum(counts, 1))).tolist() if params.class_weights else None
    module = FinetuneModule(
        dataclasses.asdict(model), dataclasses.asdict(params), tset.tokenizer_digest, weight
    )
    if state is not None:
        module.encoder.load_state_dict(state)
    return module, dm


def finetune(cfg: DictConfig, artifacts: dict) -> dict:
    trainer, module, dm, tset, best, best_score = fit_best(cfg, build_finetuning, artifacts)
    dev = split_metrics(module, dm.val_dataloader(), dm.meta)  # the kept model's, for the summary
    trainer.test(module, dm, verbose=False)
    test = module.last_metrics["test"]
    metrics = {f"test/{k}": v for k, v in test.items()}
    metrics["warnings"] = collapse_warnings(dev, "dev", CLASS_NAMES) + collapse_warnings(
        test, "test", CLASS_NAMES
    )
    metrics["train_records"] = int(len(dm.rows["train"]))
    if best_score is not None:  # the task's monitor: what train.py returns to a sweeper
        metrics[cfg.task.monitor] = metrics["val/balanced_accuracy_best"] = best_score
    if module.p.masked_eval:
        metrics.update(masked_evaluation(module, dm))
    if trainer.is_global_zero:
        out = Path(cfg.paths.output_dir)
        fig = plot_confusion(
            np.array(test["confusion_matrix"]),
            CLASS_NAMES,
            out / "confusion.png",
            f"{cfg.task.name}: test, per record",
        )
        log_image(trainer, "test/confusion", fig)
        save_metrics(cfg, metrics)
        bundle = write_run_bundle(
            cfg, module, tset, tset.metadata["label"].to_numpy()[dm.rows["train"]], metrics
        )
        log_summary(
            f"{cfg.task.name} finished",
            {
                "run folder": str(out),
                "model": str(bundle or best or "not kept"),
                "dev": score_line(dev),
                "test": score_line(test),
            },
            metrics["warnings"],
        )
    return metrics


def split_metrics(module: FinetuneModule, loader, meta) -> dict:
    """Classification metrics of one split, scored outside the trainer (nothing is logged)."""
    r = masked_input_accuracy(module, loader, None, 0.0)
    return classification_metrics(r["y"], r["prob"], meta["event_id"].to_numpy()[r["rows"]])


def masked_evaluation(module: FinetuneModule, dm: TokenDataModule) -> dict:
    """Test accuracy with parts of the input masked (the paper's robustness check)."""
    out = {}
    meta = dm.meta
    for name, (mode, rate, _) in MASKED_EVALS.items():
        r = masked_input_accuracy(module, dm.test_dataloader(), mode, rate)
        m = classification_metrics(r["y"], r["prob"], meta["event_id"].to_numpy()[r["rows"]])
        out[f"masked_{name}/accuracy"] = m["accuracy"]
        out[f"masked_{name}/balanced_accuracy"] = m["balanced_accuracy"]
        out[f"masked_{name}/predicted_blast_fraction"] = r["predicted_blast_fraction"]
    log.info(
        "masked-input test accuracy: %s",
        ", ".join(f"{n} {out[f'masked_{n}/accuracy']:.3f}" for n in MASKED_EVALS),
    )
    return out
