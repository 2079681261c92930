"""Every number the study reports, as one table (``results.csv``): cells with intervals.

One row per reported figure: ``table`` (setup, budget, finetune, gain, vs_baseline,
arm_vs_baseline, masked, tokens, windows, pool, paper, target), ``arm``, ``labels``, ``metric``,
``value`` with ``lo``/``hi`` (percent, one decimal, as printed), ``n_seeds``, ``n_events`` and a
``note``. REPORT.md
and the README's results block are written from this table only, so a sentence cannot
say more than the numbers.

Intervals: 95% (``bootstrap.level``) bootstrap over test events and seeds
(``seisbert.study.stats``) for fine-tuning cells and paired differences; the range over
pretraining seeds for the masked-token figures.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from seisbert.metrics import PREDICTIONS_FILE, load_predictions
from seisbert.study.stats import bootstrap_cell, paired_difference

log = logging.getLogger(__name__)

CELL_METRICS = ("balanced_accuracy", "event_balanced_accuracy", "accuracy")
MASKED = ("first_half", "second_half", "random_76", "all")
TOKEN_METRICS = (
    "mlm_acc_all_masked",
    "mlm_acc",
    "mlm_top5",
    "baseline_random_acc",
    "baseline_step_mode_acc",
    "baseline_left_neighbour_acc",
    "sl_acc",
)
# masked-window regression (psd target), every selected window masked, beside its baselines
WINDOW_GUESSES = ("psd", "baseline_copy_left", "baseline_step_mean", "baseline_interpolation")
PAPER = [
    ("paper", "mlm", "all", "accuracy", 95.0),
    ("paper", "mlm_nsp", "all", "accuracy", 93.0),
    ("paper", "rf", "all", "accuracy", 81.0),
    ("paper", "cnn", "all", "accuracy_low", 96.0),
    ("paper", "cnn", "all", "accuracy_high", 98.0),
    ("paper", "mlm", "", "mlm_acc", 30.0),
    ("paper", "mlm", "", "baseline_random_acc", 0.6),
    ("paper", "mlm", "", "baseline_step_mode_acc", 1.1),
    ("paper", "mlm", "all", "masked_first_half", 66.6),
    ("paper", "mlm", "all", "masked_second_half", 70.3),
    ("paper", "mlm", "all", "masked_random_76", 86.4),
    ("paper", "mlm", "all", "masked_all_predicted_blast", 100.0),
]


def pct(x) -> float:
    return float("nan") if x is None or pd.isna(x) else round(100 * float(x), 1)


def row(
    table,
    arm,
    labels,
    metric,
    value,
    lo=np.nan,
    hi=np.nan,
    n_seeds=np.nan,
    n_events=np.nan,
    note="",
) -> dict:
    return {
        "table": table,
        "arm": arm,
        "labels": str(labels),
        "metric": metric,
        "value": value,
        "lo": lo,
        "hi": hi,
        "n_seeds": n_seeds,
        "n_events": n_events,
        "note": note,
    }


def cell_predictions(
    runs: pd.DataFrame, arm: str, labels, column: str = "prob"
) -> dict[int, pd.DataFrame]:
    """{seed: test predictions} of one cell, with ``column`` as the probability."""
    out = {}
    for _, r in runs[(runs.arm == arm) & (runs["labels"].astype(str) == str(labels))].iterrows():
        path = Path(str(r.output_dir)) / PREDICTIONS_FILE
        if not path.is_file():
            log.warning("%s: no %s, no interval for this seed", r.output_dir, PREDICTIONS_FILE)
            continue
        p = load_predictions(path)
        if column in p:
            out[int(r.seed)] = p.assign(prob=p[column])[["event_id", "label", "prob"]]
    return out


def interval_row(table, arm, labels, metric, ci, scale: float = 100.0) -> dict:
    return row(
        table,
        arm,
        labels,
        metric,
        round(scale * ci.value, 1),
        round(scale * ci.lo, 1),
        round(scale * ci.hi, 1),
        ci.n_seeds,
        ci.n_events,
    )


def finetune_cells(runs: pd.DataFrame, boot: dict) -> list[dict]:
    rows = []
    for (arm, labels), _ in runs.groupby(["arm", "labels"], sort=False):
        cell = cell_predictions(runs, arm, labels)
        for metric in CELL_METRICS:
            if cell:
                rows.append(
                    interval_row(
                        "finetune", arm, labels, metric, bootstrap_cell(cell, metric, **boot)
                    )
                )
    return rows


def masked_cells(runs: pd.DataFrame, boot: dict) -> list[dict]:
    """Balanced accuracy and predicted-blast fraction with masked test inputs (all labels)."""
    rows = []
    for arm in dict.fromkeys(runs.arm):
        for name in MASKED:
            cell = cell_predictions(runs, arm, "all", f"prob_masked_{name}")
            for metric in ("balanced_accuracy", "predicted_blast_fraction"):
                if cell:
                    ci = bootstrap_cell(cell, metric, **boot)
                    rows.append(interval_row("masked", arm, "all", f"{name}/{metric}", ci))
    return rows


def gain_cells(runs: pd.DataFrame, arms: dict, boot: dict) -> list[dict]:
    """Pretrained minus its reference arm (``compare_to``), paired by seed and event."""
    rows = []
    for name, arm in arms.items():
        if arm.compare_to is None or name not in set(runs.arm):
            continue
        for labels in dict.fromkeys(runs[runs.arm == name]["labels"]):
            a, b = (
                cell_predictions(runs, name, labels),
                cell_predictions(runs, arm.compare_to, labels),
            )
            if a and b and set(a) & set(b):
                d = paired_difference(a, b, **boot)
                rows.append(
                    interval_row(
                        "gain", f"{name} - {arm.compare_to}", labels, "balanced_accuracy", d
                    )
                )
    return rows


def best_by_dev(runs: pd.DataFrame, arms: list, labels) -> str | None:
    """The arm of ``arms`` with the highest mean dev balanced accuracy at ``labels`` (never
    test)."""
    r = runs[runs.arm.isin(arms) & (runs["labels"].astype(str) == str(labels))]
    dev = r.groupby("arm")["dev_balanced_accuracy"].mean().dropna()
    return None if dev.empty else str(dev.idxmax())


def vs_baseline_cells(runs: pd.DataFrame, arms: dict, boot: dict) -> list[dict]:
    """Every pretrained arm minus the best baseline at each label count (``arm_vs_baseline``),
    and the row of the best pretrained arm again as ``vs_baseline``; both chosen on dev."""
    pretrained = [n for n, a in arms.items() if a.base is not None]
    baselines = [a for a in dict.fromkeys(runs.arm) if a not in arms]
    rows = []
    for labels in dict.fromkeys(runs["labels"]):
        b, best = best_by_dev(runs, baselines, labels), best_by_dev(runs, pretrained, labels)
        pb = {} if b is None else cell_predictions(runs, b, labels)
        for a in pretrained:
            pa = cell_predictions(runs, a, labels)
            if pa and pb and set(pa) & set(pb):
                r = interval_row(
                    "arm_vs_baseline",
                    f"{a} - {b}",
                    labels,
                    "balanced_accuracy",
                    paired_difference(pa, pb, **boot),
                )
                rows += [r, {**r, "table": "vs_baseline"}] if a == best else [r]
    return rows


def sl_chance(output_dir: str) -> float | None:
    """Chance level of source linking: 1 / classes (pairs are drawn balanced)."""
    cfg = Path(output_dir) / "config.yaml"
    if not cfg.is_file():
        return None
    params = (yaml.safe_load(cfg.read_text()).get("task") or {}).get("params") or {}
    return 1.0 / params["sl_classes"] if params.get("source_linking") else None


def over_seeds(table: str, arm: str, metric: str, values: list, scale) -> dict:
    """One pretraining figure: mean over base-model seeds, lo/hi = their range, each by
    ``scale``."""
    return row(
        table,
        arm,
        "",
        metric,
        scale(np.mean(values)),
        scale(np.min(values)),
        scale(np.max(values)),
        len(values),
        note="range over pretraining seeds",
    )


def pretrain_cells(pretrain: list[dict], table: str, metrics, scale) -> list[dict]:
    """``test/<metric>`` of each base model over its pretraining seeds, for the metrics it has."""
    rows = []
    for arm in dict.fromkeys(m["arm"] for m in pretrain):
        ms = [m for m in pretrain if m["arm"] == arm]
        for metric in metrics:
            v = [m[f"test/{metric}"] for m in ms if m.get(f"test/{metric}") is not None]
            if v:
                rows.append(over_seeds(table, arm, metric, v, scale))
    return rows


@functools.lru_cache(maxsize=None)
def run_config(output_dir: str) -> dict | None:
    """A run folder's resolved config.yaml (read once per report), None when it has none."""
    path = Path(output_dir) / "config.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def pretraining_log(output_dir: str) -> tuple[str, pd.DataFrame] | None:
    """(monitored metric, its dev values by step) of one pretraining run, from its CSV log."""
    cfg, logs = run_config(output_dir), sorted(Path(output_dir).glob("csv/version_*/metrics.csv"))
    if cfg is None or not logs:
        return None
    monitor = cfg["task"]["monitor"]
    frame = pd.read_csv(logs[-1])
    if monitor not in frame:
        return None
    return monitor, frame.dropna(subset=[monitor])[["step", monitor]]


def curve_cells(pretrain: list[dict]) -> list[dict]:
    """Where each base model's pretraining stood when it stopped (table ``pretrain_curve``):
    its dev checkpoint metric (``note``) at the last check, its rise over the first and the second
    half of training (first check to mid, mid to last; points for accuracies), and ``passes``:
    how often it saw each pretraining record (steps x batch / records)."""
    rows = []
    for arm in dict.fromkeys(m["arm"] for m in pretrain):
        got = {
            "dev_last": [],
            "rise_first_half": [],
            "rise_second_half": [],
            "steps": [],
            "records": [],
            "passes": [],
        }
        acc = True
        for m in (m for m in pretrain if m["arm"] == arm):
            log_ = pretraining_log(m.get("output_dir", ""))
            if log_ is None or log_[1].empty:
                continue
            monitor, frame = log_
            acc = "acc" in monitor  # accuracies in percent; a regression loss as it is
            steps = int(frame.step.iloc[-1]) + 1
            mid = frame[monitor].iloc[len(frame) // 2]  # the middle check (of 5: the third)
            got["dev_last"].append(frame[monitor].iloc[-1])
            got["rise_first_half"].append(mid - frame[monitor].iloc[0])
            got["rise_second_half"].append(frame[monitor].iloc[-1] - mid)
            got["steps"].append(steps)
            batch = run_config(m["output_dir"])["task"]["params"]["batch_size"]
            if m.get("pretrain_records"):
                got["records"].append(m["pretrain_records"])
                got["passes"].append(steps * batch / m["pretrain_records"])
        for metric, v in got.items():
            if v:
                scale = (
                    pct
                    if acc and metric.startswith(("dev", "rise"))
                    else (lambda x: round(float(x), 3))
                )
                rows.append(
                    {**over_seeds("pretrain_curve", arm, metric, v, scale), "note": monitor}
                )
    return rows


def token_cells(pretrain: list[dict]) -> list[dict]:
    """Masked-token figures (percent), and the source-linking chance level where it applies."""
    rows = pretrain_cells(pretrain, "tokens", TOKEN_METRICS, pct)
    for arm in dict.fromkeys(m["arm"] for m in pretrain):
        chance = sl_chance(next(m for m in pretrain if m["arm"] == arm).get("output_dir", ""))
        if chance is not None:
            rows.append(
                row("tokens", arm, "", "sl_chance", pct(chance), note="1 / source-linking classes")
            )
    return rows


def window_cells(pretrain: list[dict]) -> list[dict]:
    """Masked-window MSE and log-spectral distance (dB) of psd-target base models and their
    baselines."""
    metrics = [f"{guess}_{err}" for guess in WINDOW_GUESSES for err in ("mse", "lsd")]
    return pretrain_cells(pretrain, "windows", metrics, lambda x: round(float(x), 3))


GAP_GUESSES = ("interpolation", "step_mean")  # fill_gaps' baselines, the same for every base model


def gapfill_cells(gapfill: list[dict]) -> list[dict]:
    """Gap filling (table ``gapfill``): LSD (dB) on the gap per ``<gap>s/<position>`` of each base
    model (mean and range over its seeds) and of the baselines (arm ``interpolation``,
    ``step_mean``)."""
    if not gapfill:
        return []
    frame, rows = pd.DataFrame(gapfill), []
    first = frame.arm.iloc[0]
    for (gap, position), g in frame.groupby(["gap_s", "position"], sort=False):
        metric = f"{gap:g}s/{position}"
        for arm, a in g.groupby("arm", sort=False):
            rows.append(
                {
                    **over_seeds(
                        "gapfill", arm, metric, list(a.model_lsd_db), lambda x: round(float(x), 2)
                    ),
                    "note": "LSD dB; range over pretraining seeds",
                }
            )
        for guess in GAP_GUESSES:
            rows.append(
                row(
                    "gapfill",
                    guess,
                    "",
                    metric,
                    round(float(g[g.arm == first][f"{guess}_lsd_db"].iloc[0]), 2),
                    n_events=int(g.windows.iloc[0]),
                    note="LSD dB; gap windows in n_events",
                )
            )
    return rows


def collapsed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs whose classifier predicts one class for everything (dev and test balanced accuracy
    exactly 0.5): they pull their cell's mean, and every difference with it, around."""
    return runs[(runs.dev_balanced_accuracy == 0.5) & (runs.balanced_accuracy == 0.5)]


def collapsed_cells(runs: pd.DataFrame) -> list[dict]:
    return [
        row("collapsed", r.arm, r["labels"], "seed", int(r.seed), note=f"chosen {r.chosen}")
        for _, r in collapsed_runs(runs).iterrows()
    ]


def budget_cells(runs: pd.DataFrame) -> list[dict]:
    rows = []
    for (arm, labels), r in runs.groupby(["arm", "labels"], sort=False):
        first = r.iloc[0]
        for key in ("epochs", "steps", "train_records"):
            if key in r and not pd.isna(first[key]):
                rows.append(row("budget", arm, labels, key, int(first[key])))
    return rows


def base_cells(study) -> list[dict]:
    """Which base model each pretrained arm fine-tuned (table ``base``; the name in ``note``)."""
    return [
        row("base", name, "", "base_model", np.nan, note=arm.base)
        for name, arm in study.finetune.arms.items()
        if arm.base is not None
    ]


def pool_cells(summary: dict, study) -> list[dict]:
    """Unlabeled records behind each arm of the pool-size curve (its base model's pool)."""
    rows = []
    for name in study.pool_curve:
        base = study.finetune.arms[name].base
        sizes = [m.get("pool_records") for m in summary["pretrain"] if m["arm"] == base]
        if sizes and None not in sizes:
            rows.append(
                row(
                    "pool", name, "", "pool_records", int(np.mean(sizes)), note=f"base model {base}"
                )
            )
    return rows


def setup_cells(summary: dict, study) -> list[dict]:
    meta = summary["metadata"]
    test = meta[meta.split == "test"]
    values = {
        "records": len(meta),
        "events": meta.event_id.nunique(),
        "test_records": len(test),
        "test_events": test.event_id.nunique(),
        "seeds": len(study.seeds),
        "pretrain_seeds": len(study.pretrain_seeds),
        "lr_grid_size": len(study.finetune.lr_grid),
        "tune_seed": study.finetune.tune_seed,
        "ci_level": round(100 * study.bootstrap.level),
        "budget_epochs": study.budget.epochs,
        "budget_min_steps": study.budget.min_steps,
        "patience": study.budget.patience,
        "minutes": round(summary["timings_s"].get("runs", summary["timings_s"]["total"]) / 60, 1),
        "invocation_minutes": round(summary["timings_s"]["total"] / 60, 1),
    }
    # a base model with its own (fewer) seeds: a setup row under its name
    fewer = [
        row("setup", name, "", "pretrain_seeds", len(study.base_seeds(name)))
        for name in study.pretrain
        if study.base_seeds(name) != list(study.pretrain_seeds)
    ]
    return [row("setup", "", "", k, v) for k, v in values.items()] + fewer


def _target(kind: str, r, why: str | None, short: float | None = None) -> list[dict]:
    """A target row (note: met, or why not); a shortfall that the note prints gets its own row
    (``<kind>/shortfall``), so every number a report shows is in results.csv."""
    out = [
        row(
            "target",
            r.arm,
            r["labels"],
            kind,
            r.value,
            r.lo,
            r.hi,
            r.n_seeds,
            r.n_events,
            "met" if why is None else f"not met: {why}",
        )
    ]
    if why is not None and short is not None:
        out.append(row("target", r.arm, r["labels"], f"{kind}/shortfall", round(short, 1)))
    return out


def target_cells(cells: pd.DataFrame, study) -> list[dict]:
    """``study.targets`` checked against the rows they rest on (table ``target``; note: met or why
    not)."""
    t = study.targets
    rows = [
        row("target", "", "", f"threshold/{k}", v)
        for k, v in {
            "gain_points": t.gain_points,
            "baseline_labels_max": t.baseline_labels_max,
            "baseline_margin_all": t.baseline_margin_all,
            "token_vs_left": t.token_vs_left,
        }.items()
    ]
    scratch = {n for n, a in study.finetune.arms.items() if a.base is None}
    for _, r in cells[cells.table == "gain"].iterrows():
        if r.arm.split(" - ")[1] in scratch and r["labels"] in {str(n) for n in t.gain_labels}:
            short = t.gain_points - r.value
            if short > 0:
                rows += _target("gain_over_scratch", r, f"{short:.1f} points short", short)
            else:
                rows += _target(
                    "gain_over_scratch",
                    r,
                    None if r.lo > 0 else f"its interval starts at {r.lo:.1f}",
                )
    for _, r in cells[cells.table == "vs_baseline"].iterrows():
        if r["labels"] == "all":
            short = -r.value - t.baseline_margin_all
            rows += _target(
                "best_vs_baseline_all",
                r,
                None if short <= 0 else f"{short:.1f} points beyond the margin",
                short,
            )
        elif int(r["labels"]) <= t.baseline_labels_max:
            rows += _target(
                "best_vs_baseline", r, None if r.value >= 0 else f"{-r.value:.1f} points below"
            )
    for arm in dict.fromkeys(cells[cells.table == "tokens"].arm):
        acc, left = (
            lookup(cells, "tokens", arm, "", m)
            for m in ("mlm_acc_all_masked", "baseline_left_neighbour_acc")
        )
        if acc is not None and left is not None and left.value > 0:
            ratio = round(acc.value / left.value, 1)
            rows.append(
                row(
                    "target",
                    arm,
                    "",
                    "masked_vs_left_neighbour",
                    ratio,
                    n_seeds=acc.n_seeds,
                    note="met"
                    if ratio >= t.token_vs_left
                    else f"not met: {ratio} < {t.token_vs_left}",
                )
            )
    if len(study.pool_curve) > 1:
        for labels in t.pool_labels:
            r = lookup(
                cells,
                "gain",
                f"{study.pool_curve[-1]} - {study.pool_curve[0]}",
                labels,
                "balanced_accuracy",
            )
            if r is not None:
                rows += _target(
                    "pool_rises",
                    r,
                    f"{r.value:+.1f} points"
                    if r.value <= 0
                    else None
                    if r.lo > 0
                    else f"its interval starts at {r.lo:.1f}",
                )
    return [with_collapsed(r, cells) for r in rows]


def with_collapsed(r: dict, cells: pd.DataFrame) -> dict:
    """A verdict that rests on a collapsed run says so (the run is in table ``collapsed``)."""
    bad = cells[(cells.table == "collapsed") & (cells["labels"].astype(str) == str(r["labels"]))]
    hits = [
        f"{b.arm} seed {int(b.value)}"
        for _, b in bad.iterrows()
        if b.arm in str(r["arm"]).split(" - ")
    ]
    if "/" in r["metric"] or not hits:
        return r
    return {**r, "note": f"{r['note']}; rests on a collapsed run ({', '.join(hits)})"}


def result_cells(summary: dict) -> pd.DataFrame:
    """The whole ``results.csv`` of a study summary (``seisbert.study.protocol.run_study``'s
    output)."""
    study, runs = summary["config"], summary["runs"]
    boot = {
        "n_boot": study.bootstrap.n_boot,
        "level": study.bootstrap.level,
        "seed": study.bootstrap.seed,
    }
    rows = [
        *setup_cells(summary, study),
        *budget_cells(runs),
        *collapsed_cells(runs),
        *finetune_cells(runs, boot),
        *gain_cells(runs, study.finetune.arms, boot),
        *vs_baseline_cells(runs, study.finetune.arms, boot),
        *masked_cells(runs, boot),
        *token_cells(summary["pretrain"]),
        *window_cells(summary["pretrain"]),
        *curve_cells(summary["pretrain"]),
        *base_cells(study),
        *pool_cells(summary, study),
        *gapfill_cells(summary.get("gapfill", [])),
        *[row(*p) for p in PAPER],
    ]
    cells = pd.DataFrame(rows)
    return (
        cells
        if study.targets is None
        else pd.concat([cells, pd.DataFrame(target_cells(cells, study))], ignore_index=True)
    )


def lookup(cells: pd.DataFrame, table: str, arm: str, labels, metric: str) -> pd.Series | None:
    hit = cells[
        (cells.table == table)
        & (cells.arm == arm)
        & (cells["labels"] == str(labels))
        & (cells.metric == metric)
    ]
    return None if hit.empty else hit.iloc[0]
