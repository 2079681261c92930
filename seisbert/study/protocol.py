"""The paper's study in one call: pretrain, fine-tune every arm at every label count, baselines.

The protocol (``configs/study/``, schema ``seisbert.study.config.StudyConfig``):

- every transformer arm tunes its learning rate on dev from one shared log-spaced grid,
  extended by one grid step while the chosen value sits on an edge; the CNN and trees
  tune their knob over a grid of the same size; every arm chooses at the tuning seed and
  reuses that choice for the other seeds;
- every neural arm gets the same budget in epochs (``budget``), early stopping on dev
  balanced accuracy, and its best dev checkpoint restored before the test;
- a pretrained arm is handed its base model's checkpoint explicitly
  (``task.params.checkpoint``): the one this study trained, at the base seed paired with
  its fine-tuning seed;
- every run folder is named by the hash of its full resolved config, so a rerun reuses a
  finished run only when nothing about it changed;
- every run leaves its test predictions behind; the report bootstraps over test events.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

from seisbert.analysis.gapfill import evaluate_test, load_model
from seisbert.artifacts.cache import config_hash
from seisbert.baselines import fit_baseline
from seisbert.config import build
from seisbert.data.subsets import labelled_rows
from seisbert.metrics import PREDICTIONS_FILE, save_predictions
from seisbert.pipeline import FeatureSet, TokenSet, prepare
from seisbert.study.config import StudyConfig
from seisbert.train.job import train_job, validate, write_run_info
from seisbert.train.schemas import register

log = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
_PLACEHOLDER = "<run folder>"  # output_dir while hashing: the folder is named by the hash
TRANSFORMER_KNOB = "lr"


def load_study(scale: str = "quick", overrides: list | None = None) -> StudyConfig:
    """``configs/study/<scale>.yaml`` with ``key=value`` overrides, checked by its dataclass."""
    with initialize_config_dir(config_dir=str(CONFIGS / "study"), version_base="1.3"):
        node = compose(scale, overrides=list(overrides or []))
    return build(node, "study")


def compose_run(study: StudyConfig, overrides: list) -> DictConfig:
    """The run's full config (base overrides first) with ``paths.output_dir`` left to name."""
    register()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[*study.base_overrides, *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = _PLACEHOLDER
    validate(cfg)
    return cfg


def run_hash(cfg: DictConfig) -> str:
    """Hash of the full resolved config, independent of the folder it will run in."""
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.paths.output_dir = _PLACEHOLDER
    return config_hash(OmegaConf.to_container(cfg, resolve=True))


def place(cfg: DictConfig, study: StudyConfig, *parts: str) -> DictConfig:
    """Set the run folder: ``run_dir/<parts...>-<config hash>``."""
    folder = Path(study.run_dir, *parts[:-1], f"{parts[-1]}-{run_hash(cfg)}")
    with open_dict(cfg):
        cfg.paths.output_dir = str(folder)
    return cfg


def run_once(cfg: DictConfig) -> dict:
    """Run a task unless its folder (named by its config hash) already holds its metrics."""
    out = Path(cfg.paths.output_dir)
    if (out / "metrics.json").exists():
        log.info("reusing %s (same resolved config)", out)
        return json.loads((out / "metrics.json").read_text())
    write_run_info(cfg)
    return train_job(cfg)


def run_ahead(cfgs: list[DictConfig], jobs: int) -> None:
    """Run the configs not yet finished, ``jobs`` at a time in worker processes.

    Each run keeps its own ``torch_threads``, so ``jobs`` x threads should match the cores.
    The caller then reads every result through ``run_once``, which reuses these folders: the
    sequential path and the parallel one give the same runs, only the wall time differs.
    """
    todo = {
        c.paths.output_dir: c
        for c in cfgs
        if not (Path(c.paths.output_dir) / "metrics.json").exists()
    }
    if jobs <= 1 or len(todo) <= 1:
        return
    log.info("running %d runs, %d at a time", len(todo), jobs)
    # spawn: a fresh interpreter per worker, so no torch/OpenMP state is forked mid-use
    with ProcessPoolExecutor(
        min(jobs, len(todo)), mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        for _ in pool.map(run_once, todo.values()):
            pass


def pretrain_bases(study: StudyConfig, alongside: list | None = None) -> dict:
    """Train every base model at every pretraining seed; {(arm, seed): metrics + checkpoint}.

    ``alongside``: runs that need no base model (the scratch arms' first grid), queued after
    the base models so a core left idle by an odd number of them is not wasted.
    """
    cfgs = {
        (name, seed): place(
            compose_run(study, [*study.pretrain_args(name), f"seed={seed}"]),
            study,
            "pretrain",
            name,
            f"seed{seed}",
        )
        for name in study.pretrain
        for seed in study.base_seeds(name)
    }
    run_ahead([*cfgs.values(), *(alongside or [])], study.jobs)
    out = {}
    for name in study.pretrain:
        for seed in study.base_seeds(name):
            cfg = cfgs[(name, seed)]
            start = time.perf_counter()
            metrics = dict(run_once(cfg))
            ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
            if not ckpt.is_file():
                raise FileNotFoundError(
                    f"pretraining arm {name!r} (seed {seed}) left no {ckpt}; "
                    f"its task must keep a best checkpoint (callbacks.model_checkpoint)"
                )
            metrics.update(
                seconds=time.perf_counter() - start,
                base_checkpoint=str(ckpt),
                output_dir=cfg.paths.output_dir,
                arm=name,
                seed=seed,
            )
            out[(name, seed)] = metrics
    return out


def protocol_overrides(
    study: StudyConfig, arm, plan: dict, size, seed: int, lr: float, checkpoint
) -> list:
    """What the protocol fixes for a fine-tuning run, appended after the arm's own overrides."""
    b = study.budget
    over = [
        *arm.overrides,
        f"seed={seed}",
        f"task.params.labels={'null' if size is None else size}",
        f"task.params.subset_seed={seed}",
        f"task.params.lr={lr}",
        f"task.params.batch_size={b.batch_size}",
        f"trainer.max_epochs={plan['epochs']}",
        "trainer.max_steps=-1",
        "trainer.val_check_interval=1.0",
        f"trainer.check_val_every_n_epoch={plan['val_every_epochs']}",
        f"task.monitor={b.monitor}",
        "task.monitor_mode=max",
        "++callbacks.early_stopping._target_=lightning.pytorch.callbacks.EarlyStopping",
        f"++callbacks.early_stopping.monitor={b.monitor}",
        "++callbacks.early_stopping.mode=max",
        f"++callbacks.early_stopping.patience={b.patience}",
        "++callbacks.test_predictions._target_=seisbert.study.callbacks.SaveTestPredictions",
        "++callbacks.test_predictions.output_dir=${paths.output_dir}",
        f"++callbacks.test_predictions.masked={arm.masked_eval and size is None}",
        # the paper masks the inputs of the all-label classifier only; other arms never
        f"task.params.masked_eval={arm.masked_eval and size is None}",
    ]
    if checkpoint is not None:
        over.append(f"task.params.checkpoint={checkpoint}")
    return over


def next_edge_value(tried: dict, step: float) -> float | None:
    """One grid step beyond the edge the best value sits on, or None when it is inside.

    Ties go to the smaller value (the grid is tried in increasing order).
    """
    values = sorted(tried)
    best = max(values, key=lambda v: tried[v])
    if best == values[0]:
        return float(f"{values[0] / step:.3g}")
    if best == values[-1]:
        return float(f"{values[-1] * step:.3g}")
    return None


def tune_many(cells: list, grid: list, step: float, max_extensions: int, score_many) -> dict:
    """The lr search of several cells at once: every cell's ``grid``, then one grid step beyond
    the edge its best value sits on, up to ``max_extensions`` times. ``score_many([(cell, value),
    ...])`` scores a round's runs together (so they can run in parallel); returns
    ``{cell: (best value, {value: score})}``, ties to the smaller value."""
    tried = {c: {} for c in cells}
    todo = [(c, float(v)) for c in cells for v in grid]
    for round_ in range(max_extensions + 1):
        for (c, v), score in zip(todo, score_many(todo)):
            tried[c][v] = score
        if round_ == max_extensions:
            break
        todo = [(c, v) for c in cells if (v := next_edge_value(tried[c], step)) is not None]
        if not todo:
            break
        log.info(
            "best %s sits on the grid's edge: trying %s",
            TRANSFORMER_KNOB,
            ", ".join(f"{v:g} ({c})" for c, v in todo),
        )
    return {c: (max(sorted(t), key=lambda v: t[v]), t) for c, t in tried.items()}


def tune(grid: list, step: float, max_extensions: int, score) -> tuple[float, dict]:
    """``score(value)`` over ``grid``, extended while the best sits on an edge; (best,
    {value: score})."""
    return tune_many([None], grid, step, max_extensions, lambda todo: [score(v) for _, v in todo])[
        None
    ]


def dev_score(metrics: dict, monitor: str) -> float:
    value = metrics.get(monitor, metrics.get("val/balanced_accuracy_best"))
    return -np.inf if value is None or np.isnan(value) else float(value)


def finetune_cells(study: StudyConfig) -> list[tuple]:
    return [(name, size) for name in study.finetune.arms for size in study.arm_labels(name)]


def finetune_one(study: StudyConfig, meta: pd.DataFrame, bases: dict, cell, seed: int, lr: float):
    """One fine-tuning run's config (placed in its folder), its budget plan and base checkpoint."""
    (name, size), arm = cell, study.finetune.arms[cell[0]]
    plan = study.budget.plan(len(labelled_rows(meta, size, seed)))
    base = (
        None
        if arm.base is None
        else bases[(arm.base, study.pretrain_seed(seed, arm.base))]["base_checkpoint"]
    )
    cfg = compose_run(study, protocol_overrides(study, arm, plan, size, seed, lr, base))
    return (
        place(cfg, study, "finetune", name, f"n{size or 'all'}", f"seed{seed}", f"lr{lr:g}"),
        plan,
        base,
    )


def scratch_grid(study: StudyConfig, meta: pd.DataFrame) -> list[DictConfig]:
    """The first lr grid of every arm without a base model: runnable before pretraining ends."""
    ft = study.finetune
    return [
        finetune_one(study, meta, {}, cell, ft.tune_seed, float(lr))[0]
        for cell in finetune_cells(study)
        if ft.arms[cell[0]].base is None
        for lr in ft.lr_grid
    ]


def finetune_arms(study: StudyConfig, meta: pd.DataFrame, bases: dict) -> list[dict]:
    """Every arm at every label count and seed; the lr is chosen on dev at the tuning seed.

    The runs of one round (every cell's grid, then every cell's edge extension, then every
    other seed at the chosen lr) are made together, ``study.jobs`` at a time.
    """
    ft = study.finetune
    cells = finetune_cells(study)

    def setup(cell, seed, lr):
        return finetune_one(study, meta, bases, cell, seed, lr)[0]

    def one(cell, seed, lr):
        cfg, plan, base = finetune_one(study, meta, bases, cell, seed, lr)
        return {
            **run_once(cfg),
            "plan": plan,
            "output_dir": cfg.paths.output_dir,
            "base_checkpoint": base,
        }

    def score_many(todo):
        run_ahead([setup(c, ft.tune_seed, lr) for c, lr in todo], study.jobs)
        return [dev_score(one(c, ft.tune_seed, lr), study.budget.monitor) for c, lr in todo]

    tuned = tune_many(cells, ft.lr_grid, ft.lr_step, ft.max_extensions, score_many)
    others = [s for s in study.seeds if s != ft.tune_seed]
    run_ahead([setup(c, s, tuned[c][0]) for c in cells for s in others], study.jobs)
    rows = []
    for cell in cells:
        best_lr, tried = tuned[cell]
        for seed in study.seeds:
            rows.append(
                result_row(
                    *cell,
                    seed,
                    one(cell, seed, best_lr),
                    {TRANSFORMER_KNOB: best_lr},
                    {f"{lr:g}": v for lr, v in sorted(tried.items())},
                )
            )
    return rows


def result_row(arm, size, seed, m: dict, chosen: dict, tried) -> dict:
    plan = m.get("plan") or {}
    row = {
        "arm": arm,
        "labels": "all" if size is None else int(size),
        "seed": seed,
        "train_records": m.get("train_records"),
        "chosen": json.dumps(chosen, default=str),
        "tried": json.dumps(tried, default=str),
        "epochs": plan.get("epochs"),
        "steps": plan.get("steps"),
        "val_every_epochs": plan.get("val_every_epochs"),
        "output_dir": m.get("output_dir"),
        "base_checkpoint": m.get("base_checkpoint"),
        "dev_balanced_accuracy": m.get("val/balanced_accuracy_best"),
    }
    for key in (
        "accuracy",
        "balanced_accuracy",
        "f1",
        "roc_auc",
        "event_accuracy",
        "event_balanced_accuracy",
    ):
        row[key] = m.get(f"test/{key}")
    row.update({k: v for k, v in m.items() if k.startswith("masked_")})
    return row


def baseline_grid_size(study: StudyConfig, name: str, cfg) -> None:
    n, want = len(cfg.grid()), len(study.finetune.lr_grid)
    if n != want:
        raise ValueError(
            f"study.baselines.{name} tries {n} settings ({cfg.grid()}) but the transformers' "
            f"study.finetune.lr_grid has {want}: give every arm a grid of the same size"
        )


def with_budget(cfg, plan: dict, study: StudyConfig):
    """A neural baseline (the CNN) trained under the transformers' budget; trees unchanged."""
    fields = {f.name for f in dataclasses.fields(cfg)}
    if "max_epochs" not in fields:
        return cfg
    every = plan["val_every_epochs"] * plan["steps_per_epoch"]
    return dataclasses.replace(
        cfg,
        max_epochs=plan["epochs"],
        max_steps=plan["steps"],
        val_every_steps=every,
        batch_size=study.budget.batch_size,
        patience=study.budget.patience,
    )


def baseline_arms(study: StudyConfig, paths: dict) -> list[dict]:
    """Random forests (tokens), boosted trees and CNN (PSD windows) on the same subsets.

    As for the transformer arms, each (baseline, label count) chooses its knob from the whole
    grid at the tuning seed; the other seeds fit that one setting.
    """
    fset, tset = FeatureSet.load(paths["features"]), TokenSet.load(paths["tokens"])
    features, tokens, meta = np.asarray(fset.features), np.asarray(tset.tokens), tset.metadata
    tune_seed = study.finetune.tune_seed
    seeds = [tune_seed, *(s for s in study.seeds if s != tune_seed)]
    order = {s: i for i, s in enumerate(study.seeds)}
    rows = []
    for name, overrides in study.baselines.items():
        ours = []
        cfg = compose_run(study, list(overrides))
        kind, base_cfg = cfg.task.baseline, build(cfg.baseline, "baseline")
        baseline_grid_size(study, name, base_cfg)
        for size in study.label_sizes:
            tuned = None
            for seed in seeds:
                idx = labelled_rows(meta, size, seed)
                plan = study.budget.plan(len(idx))
                bcfg = with_budget(base_cfg, plan, study)
                grid = None if tuned is None else [tuned["chosen"]]
                key = (run_hash(cfg), dataclasses.asdict(bcfg), size, seed) + (
                    () if grid is None else (grid,)
                )
                folder = Path(
                    study.run_dir,
                    "baselines",
                    name,
                    f"n{size or 'all'}",
                    f"seed{seed}-" + config_hash(*key),
                )
                m = baseline_one(kind, bcfg, folder, features, tokens, meta, idx, seed, grid)
                m["plan"] = plan if bcfg is not base_cfg else None
                tuned = tuned or m
                ours.append(result_row(name, size, seed, m, tuned["chosen"], tuned["tried"]))
        rows += sorted(ours, key=lambda r: order[r["seed"]])  # runs.csv lists seed by seed
    return rows


def baseline_one(kind, bcfg, folder: Path, features, tokens, meta, idx, seed, grid=None) -> dict:
    """Fit one baseline over ``grid`` (or reuse its folder), writing metrics and test
    predictions."""
    if (folder / "metrics.json").exists():
        return json.loads((folder / "metrics.json").read_text())
    r = fit_baseline(kind, bcfg, features, tokens, meta, idx, seed=seed, grid=grid)
    save_predictions(folder / PREDICTIONS_FILE, meta, r.test_rows, r.test_prob)
    m = {f"test/{k}": v for k, v in r.test.items()}
    m.update(
        train_records=r.n_train,
        chosen=r.chosen,
        output_dir=str(folder),
        tried=[{"params": t["params"], **t["dev"]} for t in r.tried],
        **{
            "val/balanced_accuracy_best": r.dev.get("balanced_accuracy"),
            "train_accuracy": r.train["accuracy"],
        },
    )
    (folder / "metrics.json").write_text(json.dumps(m, indent=2, default=str))
    return m


def runs_seconds(folders) -> float:
    """What the reported runs cost: each run's duration (its folder's config.yaml written to its
    metrics.json) summed, one core each. Unlike first-to-last wall time it does not count the gaps
    between sessions that continued the study, nor a rerun that reuses every run."""
    made = [
        Path(f)
        for f in folders
        if (Path(f) / "metrics.json").is_file() and (Path(f) / "config.yaml").is_file()
    ]
    return float(
        sum(
            (f / "metrics.json").stat().st_mtime - (f / "config.yaml").stat().st_mtime for f in made
        )
    )


def gapfill_bases(study: StudyConfig, bases: dict) -> list[dict]:
    """Gap filling (``seisbert.analysis.gapfill``) of every seed of each ``study.gapfill.bases``
    model, one row per gap length x position; kept in the base model's folder, named by its
    settings."""
    g, rows = study.gapfill, []
    for name in g.bases:
        for seed in study.base_seeds(name):
            base = bases[(name, seed)]
            path = (
                Path(base["output_dir"])
                / f"gapfill_{'-'.join(map(str, g.lengths))}_n{g.max_records}.csv"
            )
            if not path.is_file():
                log.info("gap filling: %s seed %d", name, seed)
                cache_dir = OmegaConf.load(Path(base["output_dir"]) / "config.yaml").paths.cache_dir
                table = evaluate_test(
                    *load_model(base["base_checkpoint"], cache_dir), g.lengths, g.max_records
                )[0]
                table.to_csv(path, index=False)
            rows += [{**r, "arm": name, "seed": seed} for r in pd.read_csv(path).to_dict("records")]
    return rows


def run_study(study: StudyConfig) -> dict:
    """Everything the report needs, as plain data (runs also written to runs.csv)."""
    out = Path(study.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    paths = prepare(place(compose_run(study, ["task=prepare"]), study, "prepare"))
    meta = TokenSet.load(paths["tokens"]).metadata
    timings = {}
    t = time.perf_counter()
    bases = pretrain_bases(study, alongside=scratch_grid(study, meta))
    timings["pretrain"] = time.perf_counter() - t
    t = time.perf_counter()
    gaps = gapfill_bases(study, bases)
    timings["gapfill"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = finetune_arms(study, meta, bases)
    timings["finetune"] = time.perf_counter() - t
    t = time.perf_counter()
    rows += baseline_arms(study, paths)
    timings["baselines"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start
    runs = pd.DataFrame(rows)
    timings["runs"] = runs_seconds(
        [*runs["output_dir"], *(b["output_dir"] for b in bases.values())]
    )
    runs.to_csv(out / "runs.csv", index=False)
    summary = {
        "scale": study.scale,
        "pretrain": list(bases.values()),
        "gapfill": gaps,
        "timings_s": timings,
        "artifacts": {k: str(v) for k, v in paths.items()},
        "study": dataclasses.asdict(study),
    }
    (out / "runs.json").write_text(json.dumps(summary, indent=2, default=str))
    return {"runs": runs, "config": study, "metadata": meta, **summary}
