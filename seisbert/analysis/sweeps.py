"""A Hydra multirun summarised: one row per job (its swept settings and final metrics), a plot.

Reads every job folder's ``config.yaml`` (the resolved config train.py writes) and
``metrics.json``; a job without ``metrics.json`` (failed, killed or still running) is kept
with status ``missing``, never dropped. ``summarize_sweep`` writes ``summary.csv`` (every
config key that differs between jobs, every metric), ``summary.md`` and ``summary.png`` (the
metric against heads, layers and vocabulary size: one dot per job, the line joins the means
over the other settings) and prints the markdown table. ``scripts/sweep_summary.py`` is its
command line.

Jobs are ranked by a **dev** metric, never a test one: choosing the best job on test and
then reporting its test number is selection on the test set. The default is the task's
monitor (``task.monitor``, e.g. ``val/mlm_acc``); another dev metric can be named, and
``show`` adds columns beside it (test metrics included, for reading only).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd
import yaml

from seisbert.figures import pyplot

log = logging.getLogger(__name__)

# The paper's grid axes, always in the table and the plot when present.
AXES = {
    "model.heads": "attention heads",
    "model.layers": "layers",
    "tokenizer.vocab_size": "vocabulary size K",
}
# Config keys that differ between jobs without being settings (per-job folders).
IGNORED_PREFIXES = ("paths.", "hydra.")


def flatten(node: dict, prefix: str = "") -> dict:
    """Nested dicts -> {"a.b.c": value}; lists stay values."""
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def job_folders(multirun: Path) -> list[Path]:
    """Folders holding a job's ``config.yaml``, in job-number order (0, 1, ..., 10)."""
    folders = {p.parent for p in multirun.rglob("config.yaml") if p.parent.name != ".hydra"}
    return sorted(
        folders,
        key=lambda p: [int(s) if s.isdigit() else math.inf for s in p.relative_to(multirun).parts],
    )


def load_jobs(multirun: Path) -> pd.DataFrame:
    """One row per job: ``job``, ``status``, ``cfg:<key>`` for every config key, metric columns."""
    rows = []
    for folder in job_folders(multirun):
        cfg = flatten(yaml.safe_load((folder / "config.yaml").read_text()))
        # values resolved from the job's own folder (checkpoint dirs, logger dirs) are not settings;
        # paths.output_dir names it as it was when the job ran (the folder may have moved since)
        own = {str(folder), str(cfg.get("paths.output_dir", folder))}
        cfg = {
            k: v for k, v in cfg.items() if not (isinstance(v, str) and any(o in v for o in own))
        }
        row = {"job": str(folder.relative_to(multirun)), "status": "missing"}
        row.update(
            {
                f"cfg:{k}": json.dumps(v) if isinstance(v, (list, dict)) else v
                for k, v in cfg.items()
            }
        )
        metrics_file = folder / "metrics.json"
        if metrics_file.exists():
            row["status"] = "done"
            row.update(json.loads(metrics_file.read_text()))
        rows.append(row)
    if not rows:
        raise FileNotFoundError(
            f"no job folder with config.yaml under {multirun}: is it a multirun folder?"
        )
    return pd.DataFrame(rows)


def swept_keys(jobs: pd.DataFrame) -> list[str]:
    """The grid axes present, then every other config key whose value differs between jobs.

    A key that only mirrors an earlier one (``model.vocab_size`` follows
    ``tokenizer.vocab_size``) is left out.
    """
    cfg_cols = [
        c for c in jobs.columns if c.startswith("cfg:") and not c[4:].startswith(IGNORED_PREFIXES)
    ]
    varying = [c[4:] for c in cfg_cols if jobs[c].astype(str).nunique() > 1]
    keys, seen = [], set()
    for k in [k for k in AXES if f"cfg:{k}" in jobs.columns] + [
        k for k in varying if k not in AXES
    ]:
        values = tuple(jobs[f"cfg:{k}"].astype(str))
        if values not in seen or k in AXES:
            keys.append(k)
            seen.add(values)
    return keys


TEST_PREFIX = "test/"


def default_metric(jobs: pd.DataFrame) -> str:
    """The task's monitor: a dev metric (what the checkpoint and a sweeper select on)."""
    monitor = jobs.get("cfg:task.monitor", pd.Series([None])).dropna()
    if monitor.empty:
        raise ValueError("the jobs' configs have no task.monitor; pass --metric")
    return check_ranking_metric(str(monitor.iloc[0]))


def check_ranking_metric(metric: str) -> str:
    if metric.startswith(TEST_PREFIX):
        raise ValueError(
            f"--metric={metric} is a test metric; jobs are ranked on dev only (e.g. "
            f"val/{metric[len(TEST_PREFIX) :]}); show test columns with --show {metric}"
        )
    return metric


def summary_table(jobs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Swept settings and every numeric metric, best job first by the dev ``metric``."""
    check_ranking_metric(metric)
    if metric not in jobs.columns:
        raise ValueError(
            f"metric {metric!r} is in no job's metrics.json; found: "
            f"{sorted(c for c in jobs.columns if '/' in c and not c.startswith('cfg:'))}"
        )
    keys = swept_keys(jobs)
    table = jobs[["job", "status"]].copy()
    for k in keys:
        table[k] = jobs[f"cfg:{k}"]
        if k == "tokenizer.vocab_size":  # chance level of a masked-token accuracy, beside its K
            table["1/K"] = 1.0 / table[k].astype(float)
    others = [
        c
        for c in jobs.columns
        if "/" in c
        and c != metric
        and not c.startswith("cfg:")
        and pd.api.types.is_numeric_dtype(jobs[c])
    ]
    for c in [metric, *others]:
        table[c] = jobs[c]
    descending = str(jobs.get("cfg:task.monitor_mode", pd.Series(["max"])).iloc[0]) != "min"
    return table.sort_values(metric, ascending=not descending, na_position="last").reset_index(
        drop=True
    )


def markdown(table: pd.DataFrame, columns: list[str]) -> str:
    """A GitHub markdown table of ``columns`` (floats to 4 decimals)."""

    def cell(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |"
        for row in table[columns].itertuples(index=False)
    ]
    return "\n".join(lines)


def plot(table: pd.DataFrame, metric: str, path: Path) -> Path:
    """The metric against each grid axis: dots per job, a line through the means."""
    plt = pyplot()

    axes = [k for k in AXES if k in table.columns]
    done = table.dropna(subset=[metric])
    fig, panels = plt.subplots(
        1, max(1, len(axes)), figsize=(4 * max(1, len(axes)), 3.4), sharey=True, squeeze=False
    )
    for ax, key in zip(panels[0], axes):
        x = pd.to_numeric(done[key])
        ax.scatter(x, done[metric], s=18, alpha=0.6, color="tab:blue", label="job")
        means = done.assign(x=x).groupby("x")[metric].mean()
        ax.plot(means.index, means.values, "o-", color="tab:orange", label="mean")
        if key == "tokenizer.vocab_size":
            ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(x.unique()), [str(int(v)) for v in sorted(x.unique())])
        ax.set_xlabel(AXES[key])
        ax.grid(alpha=0.3)
    panels[0][0].set_ylabel(metric)
    panels[0][0].legend(fontsize=8)
    fig.suptitle(f"{metric}: {len(done)} of {len(table)} jobs")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def summarize_sweep(
    multirun: str | Path,
    metric: str | None = None,
    show: list[str] | tuple[str, ...] = (),
    out: str | Path | None = None,
) -> pd.DataFrame:
    """Rank the jobs of ``multirun`` by the dev ``metric`` (default: the task's monitor), write
    summary.csv/.md/.png into ``out`` (default: the multirun folder), print the markdown table
    (``show``: more metric columns in it) and return the table, best job first."""
    multirun = Path(multirun)
    jobs = load_jobs(multirun)
    metric = metric or default_metric(jobs)
    table = summary_table(jobs, metric)
    out = Path(out) if out is not None else multirun
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "summary.csv", index=False)
    shown = [c for c in show if c in table.columns and c != metric]
    md = markdown(table, ["job", "status", *swept_keys(jobs), metric, *shown])
    (out / "summary.md").write_text(md + "\n")
    plot(table, metric, out / "summary.png")
    print(md)
    log.info(
        "%d jobs (%d missing metrics) -> %s",
        len(table),
        int((table.status != "done").sum()),
        out / "summary.csv",
    )
    return table
