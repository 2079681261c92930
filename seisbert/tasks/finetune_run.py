"""``task=finetune``: classify earthquakes vs. blasts from a base model or from scratch."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from seisbert.config import build
from seisbert.data.sequences import TokenDataModule
from seisbert.data.subsets import labelled_rows
from seisbert.metrics import classification_metrics, plot_confusion
from seisbert.model.encoder import EncoderConfig
from seisbert.pipeline import TokenSet
from seisbert.tasks.common import fit_best, log_image, save_metrics
from seisbert.tasks.finetune import FinetuneConfig, FinetuneModule, masked_input_accuracy

log = logging.getLogger(__name__)

# The paper's masked-input evaluation: (mode, mask_rate) -> 66.6 / 70.3 / 86.4 %, all -> blast.
MASKED_EVALS = {"first_half": ("first_half", 0.5), "second_half": ("second_half", 0.5),
                "random_76": ("random", 0.76), "all": ("all", 1.0)}


def find_base_checkpoint(cfg: DictConfig, params: FinetuneConfig, tset: TokenSet) -> Path:
    """The explicit checkpoint, else the newest cached ``pretrain_task`` model on these tokens."""
    if params.checkpoint is not None:
        return Path(params.checkpoint)
    root = Path(cfg.paths.cache_dir) / params.pretrain_task
    found = sorted(root.glob("*/model.json"), key=lambda p: p.stat().st_mtime)
    matching = [p for p in found if json.loads(p.read_text()).get("tokens") == tset.digest]
    if not matching:
        raise FileNotFoundError(
            f"no pretrained '{params.pretrain_task}' model for tokens {tset.digest} under {root}: run "
            f"`python train.py experiment={params.pretrain_task}` with the same data/features/tokenizer "
            f"settings first, set task.params.checkpoint, or use task.params.init=scratch")
    return matching[-1].parent / "model.ckpt"


def load_base(path: Path, tset: TokenSet) -> tuple[EncoderConfig, dict]:
    """Encoder config and weights of a pretraining checkpoint; refuses other tokens."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    hp = ckpt["hyper_parameters"]
    theirs, k = hp.get("tokenizer_digest"), hp["model"]["vocab_size"]
    if theirs != tset.digest or k != tset.vocab_size:
        raise ValueError(
            f"checkpoint {path} was pretrained on tokens {theirs} (K={k}) but this run's tokens are "
            f"{tset.digest} (K={tset.vocab_size}); fine-tune with the tokenizer it was trained on "
            f"or pretrain again")
    state = {n[len("encoder."):]: w for n, w in ckpt["state_dict"].items() if n.startswith("encoder.")}
    return EncoderConfig(**hp["model"]), state


def build_finetuning(cfg: DictConfig, tset: TokenSet):
    params = build(cfg.task.params, "task.params")
    rows = labelled_rows(tset.metadata, params.labels, params.subset_seed)
    dm = TokenDataModule(tset.tokens, tset.metadata, tset.vocab_size, params.batch_size, seed=cfg.seed,
                         num_workers=params.num_workers, train_rows=rows)
    model, state = build(cfg.model, "model"), None
    if params.init == "pretrained":
        path = find_base_checkpoint(cfg, params, tset)
        model, state = load_base(path, tset)
        log.info("fine-tuning from %s", path)
    y = tset.metadata["label"].to_numpy()[dm.rows["train"]]
    counts = np.bincount(y, minlength=2).astype(float)
    weight = (counts.sum() / (2 * np.maximum(counts, 1))).tolist() if params.class_weights else None
    module = FinetuneModule(dataclasses.asdict(model), dataclasses.asdict(params), tset.digest, weight)
    if state is not None:
        module.encoder.load_state_dict(state)
    return module, dm


def run(cfg: DictConfig, artifacts: dict) -> dict:
    trainer, module, dm, tset, best, best_score = fit_best(cfg, build_finetuning, artifacts)
    trainer.test(module, dm)
    test = module.last_metrics["test"]
    metrics = {f"test/{k}": v for k, v in test.items()}
    metrics["train_records"] = int(len(dm.rows["train"]))
    if best_score is not None:  # the task's monitor: what train.py returns to a sweeper
        metrics[cfg.task.monitor] = metrics["val/balanced_accuracy_best"] = best_score
    if module.p.masked_eval:
        metrics.update(masked_evaluation(module, dm))
    if trainer.is_global_zero:
        out = Path(cfg.paths.output_dir)
        fig = plot_confusion(np.array(test["confusion_matrix"]), ["earthquake", "blast"],
                             out / "confusion.png", f"{cfg.task.name}: test, per record")
        log_image(trainer, "test/confusion", fig)
        save_metrics(cfg, metrics)
    return metrics


def masked_evaluation(module: FinetuneModule, dm: TokenDataModule) -> dict:
    """Test accuracy with parts of the input masked (the paper's robustness check)."""
    out = {}
    meta = dm.meta
    for name, (mode, rate) in MASKED_EVALS.items():
        r = masked_input_accuracy(module, dm.test_dataloader(), mode, rate)
        m = classification_metrics(r["y"], r["prob"], meta["event_id"].to_numpy()[r["rows"]])
        out[f"masked_{name}/accuracy"] = m["accuracy"]
        out[f"masked_{name}/balanced_accuracy"] = m["balanced_accuracy"]
        out[f"masked_{name}/predicted_blast_fraction"] = r["predicted_blast_fraction"]
    log.info("masked-input test accuracy: %s", ", ".join(
        f"{n} {out[f'masked_{n}/accuracy']:.3f}" for n in MASKED_EVALS))
    return out
