"""The paper's study in one call: pretrain, fine-tune every arm at every label count, baselines.

Follows DESIGN.md's "How to compare honestly": every arm sees the same nested,
class-balanced, event-drawn label subsets and the same test set at a given seed; each
transformer arm's learning rate is chosen on dev per label count from the same grid;
each baseline chooses its own knob on dev; results are mean ± sd over seeds.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

from seisbert.baselines import fit_baseline
from seisbert.data.subsets import label_subsets
from seisbert.pipeline import FeatureSet, TokenSet, prepare
from seisbert.run import run_task, validate, write_run_info
from seisbert.tasks.common import model_artifact_dir

log = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def compose_run(study: DictConfig, overrides: list, output_dir: Path) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[*study.base_overrides, *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    validate(cfg)
    return cfg


def run_once(cfg: DictConfig) -> dict:
    """Run a task unless this run folder already holds its metrics (a resumed study)."""
    done = Path(cfg.paths.output_dir) / "metrics.json"
    if done.exists():
        return json.loads(done.read_text())
    write_run_info(cfg)
    return run_task(cfg)


def pretrain(study: DictConfig, tokens_digest: str) -> dict:
    """Train (or reuse from the cache) each base model; returns its test metrics."""
    out = {}
    for name, overrides in study.pretrain.items():
        cfg = compose_run(study, list(overrides), Path(study.run_dir) / "pretrain" / name)
        cached = model_artifact_dir(cfg, tokens_digest) / "model.json"
        start = time.perf_counter()
        metrics = json.loads(cached.read_text())["metrics"] if cached.exists() else run_once(cfg)
        metrics["seconds"] = time.perf_counter() - start
        metrics.setdefault("output_dir", cfg.paths.output_dir)
        out[name] = metrics
    return out


def finetune_overrides(study: DictConfig, arm: str, size, seed: int, lr: float) -> list:
    ft = study.finetune
    return [*ft.arms[arm], f"seed={seed}", f"task.params.labels={'null' if size is None else size}",
            f"task.params.subset_seed={seed}", f"task.params.lr={lr}", f"task.params.batch_size={ft.batch_size}",
            f"trainer.max_steps={ft.max_steps}", "trainer.max_epochs=-1", "trainer.check_val_every_n_epoch=null",
            f"trainer.val_check_interval={ft.val_every_steps}",
            f"task.params.masked_eval={size is None}"]  # the paper masks inputs of the all-label model


def finetune_arm(study: DictConfig, arm: str) -> list[dict]:
    """Every label count and seed of one arm; the lr is chosen on dev at the tuning seed."""
    rows = []
    for size in study.label_sizes:
        def one(seed, lr):
            name = f"n{size or 'all'}/seed{seed}/lr{lr:g}"
            cfg = compose_run(study, finetune_overrides(study, arm, size, seed, lr),
                              Path(study.run_dir) / "finetune" / arm / name)
            return run_once(cfg)
        tried = {lr: one(study.finetune.tune_seed, lr) for lr in study.finetune.lr_grid[arm]}
        best_lr = max(tried, key=lambda lr: tried[lr].get("val/balanced_accuracy_best", -1))
        for seed in study.seeds:
            m = tried[best_lr] if seed == study.finetune.tune_seed else one(seed, best_lr)
            rows.append(result_row(arm, size, seed, m, {"lr": best_lr},
                                   {f"{lr:g}": tried[lr].get("val/balanced_accuracy_best") for lr in tried}))
    return rows


def result_row(arm, size, seed, m: dict, chosen: dict, tried) -> dict:
    row = {"arm": arm, "labels": "all" if size is None else int(size), "seed": seed,
           "train_records": m.get("train_records"), "chosen": json.dumps(chosen, default=str),
           "tried": json.dumps(tried, default=str)}
    for key in ("accuracy", "balanced_accuracy", "f1", "roc_auc", "event_accuracy", "event_balanced_accuracy"):
        row[key] = m.get(f"test/{key}")
    for key, value in m.items():
        if key.startswith("masked_"):
            row[key] = value
    return row


def baselines(study: DictConfig, paths: dict) -> list[dict]:
    """Random forest (tokens), boosted trees and CNN (PSD windows) on the same subsets."""
    fset, tset = FeatureSet.load(paths["features"]), TokenSet.load(paths["tokens"])
    features, tokens, meta = np.asarray(fset.features), np.asarray(tset.tokens), tset.metadata
    subsets = {seed: label_subsets(meta, sizes=tuple(study.label_sizes), seed=seed) for seed in study.seeds}
    rows = []
    for name, overrides in study.baselines.items():
        cfg = compose_run(study, [f"experiment=baseline_{name}", *overrides],
                          Path(study.run_dir) / "baselines" / name)
        for seed in study.seeds:
            for size, idx in subsets[seed].items():
                r = fit_baseline(name, cfg.baseline, features, tokens, meta, idx, seed=seed)
                m = {f"test/{k}": v for k, v in r.test.items()}
                m["train_records"] = r.n_train
                row = result_row(name, size, seed, m, r.chosen,
                                 [{"params": t["params"], **t["dev"]} for t in r.tried])
                row["train_accuracy"] = r.train["accuracy"]
                rows.append(row)
    return rows


def run_study(study: DictConfig) -> dict:
    """Everything the report needs, as plain data (also written to results.json / .csv)."""
    out = Path(study.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    base = compose_run(study, ["task=prepare"], Path(study.run_dir) / "prepare")
    paths = prepare(base)
    tokens_digest = Path(paths["tokens"]).name
    timings = {}
    t = time.perf_counter()
    pre = pretrain(study, tokens_digest)
    timings["pretrain"] = time.perf_counter() - t
    rows = []
    for arm in study.finetune.arms:
        t = time.perf_counter()
        rows += finetune_arm(study, arm)
        timings[f"finetune_{arm}"] = time.perf_counter() - t
    t = time.perf_counter()
    rows += baselines(study, paths)
    timings["baselines"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start
    results = pd.DataFrame(rows)
    results.to_csv(out / "results.csv", index=False)
    summary = {"scale": study.scale, "pretrain": pre, "timings_s": timings, "artifacts": {k: str(v) for k, v in paths.items()},
               "study": OmegaConf.to_container(study, resolve=True)}
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=str))
    return {"results": results, **summary}
