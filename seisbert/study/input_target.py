"""The input x target table, from the results files of the studies that ran its arms.

Both studies follow one protocol (configs/study/quick.yaml: data, seeds, grid, budget), so an
arm's cells are taken from the first results file that holds them. ``input_target_table``
writes input_target.csv (every number shown, with the file it came from), input_target.md,
and the block between <!-- input-target:start/end --> in the page that holds it (the README or
a page it links to: docs/results.md); ``scripts/input_target_table.py`` is its command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from seisbert.study.report import block_home, fmt, markers, relative, table, update_readme
from seisbert.study.results import collapsed_runs

ROOT = Path(__file__).resolve().parents[2]  # the checkout: relative paths are read from it
SOURCES = ("reports/continuous_study/results.csv", "reports/paper/results.csv")
START, END = markers("input-target")
# arm -> (input, masked-prediction target, architecture); scratch arms have no target
ARMS = {
    "mlm": ("tokens", "k-means ids", "encoder"),
    "psd": ("PSD", "k-means ids", "encoder"),
    "psd_rp": ("PSD", "random projection", "encoder"),
    "psd_regress": ("PSD", "PSD regression", "encoder"),
    "both": ("tokens + PSD", "k-means ids", "encoder"),
    "perceiver": ("PSD", "k-means ids", "Perceiver"),
    "psd_meanpool": ("PSD", "k-means ids", "encoder, mean pooling"),
    "scratch": ("tokens", "none (scratch)", "encoder"),
    "scratch_psd": ("PSD", "none (scratch)", "encoder"),
    "scratch_both": ("tokens + PSD", "none (scratch)", "encoder"),
    "scratch_perceiver": ("PSD", "none (scratch)", "Perceiver"),
    "hgb": ("PSD windows", "boosted trees", "–"),
}
TABLES = (
    "finetune",
    "gain",
    "arm_vs_baseline",
    "vs_baseline",
)  # vs_baseline: the best arm's, as a fallback


def gather(sources: list[Path]) -> pd.DataFrame:
    """Balanced-accuracy cells of every arm in ARMS, each arm from the first source holding it."""
    claimed, rows, seen = {}, [], []
    for src in sources:
        if not src.is_file():
            continue
        cells = pd.read_csv(src, dtype={"labels": str}, keep_default_na=False, na_values=[""])
        cells = cells[cells.table.isin(TABLES) & (cells.metric == "balanced_accuracy")]
        own = cells.arm.str.split(" - ").str[0]  # "psd_rp - scratch_psd" belongs to psd_rp
        for arm in dict.fromkeys(own):
            if arm in ARMS:
                claimed.setdefault(arm, src)
        name = str(src.relative_to(ROOT)) if src.is_relative_to(ROOT) else str(src)
        rows.append(cells[own.map(claimed.get) == src].assign(source=name))
        seen.append(cells[(cells.table == "finetune") & own.isin(list(ARMS))].assign(source=name))
    return pd.concat([*rows, overlap_rows(seen)], ignore_index=True) if rows else pd.DataFrame()


def overlap_rows(seen: list[pd.DataFrame]) -> pd.DataFrame:
    """Arms run in more than one study with the same configs: the largest |difference| of their
    cells between the files (table ``overlap``), so the table says how reproducible a row is."""
    if len(seen) < 2:
        return pd.DataFrame()
    both = seen[0].merge(seen[1], on=["arm", "labels"], suffixes=("", "_other"))
    if both.empty:
        return pd.DataFrame()
    both["diff"] = (both.value - both.value_other).abs()
    worst = both.groupby("arm", sort=False)["diff"].max().round(1)
    return pd.DataFrame(
        {
            "table": "overlap",
            "arm": worst.index,
            "labels": "",
            "metric": "max_abs_difference",
            "value": worst.values,
            "source": f"{seen[0].source.iloc[0]} vs {seen[1].source.iloc[0]}",
        }
    )


def overlap_lines(cells: pd.DataFrame) -> list[str]:
    rows = cells[cells.table == "overlap"]
    if rows.empty:
        return []
    said = "; ".join(f"{r.arm} {r.value:.1f}" for _, r in rows.iterrows())
    return [
        "",
        "Arms in both files, same configs, largest difference between their cells (points): "
        f"{said}.",
    ]


def lines(cells: pd.DataFrame) -> list[str]:
    sizes = list(dict.fromkeys(cells[cells.table == "finetune"]["labels"]))

    def cell(arm, n):
        hit = cells[(cells.table == "finetune") & (cells.arm == arm) & (cells["labels"] == n)]
        return fmt(None if hit.empty else hit.iloc[0])

    def gain(arm, n, *tables):
        for table_ in tables:
            hit = cells[
                (cells.table == table_)
                & cells.arm.str.startswith(f"{arm} - ")
                & (cells["labels"] == n)
            ]
            if not hit.empty:
                return fmt(hit.iloc[0], sign=True)
        return "–"

    main = [
        [*ARMS[a], *[cell(a, n) for n in sizes]]
        for a in ARMS
        if a in set(cells[cells.table == "finetune"].arm)
    ]
    pretrained = [a for a in ARMS if not a.startswith("scratch") and a != "hgb"]
    diffs = [
        [
            *ARMS[a],
            *[gain(a, n, "gain") for n in sizes],
            *[gain(a, n, "arm_vs_baseline", "vs_baseline") for n in sizes],
        ]
        for a in pretrained
        if a in set(cells.arm.str.split(" - ").str[0])
    ]
    src = sorted(set(cells.source))
    return [
        "Test balanced accuracy (percent) with bootstrap intervals over test events and seeds "
        "(`study.bootstrap`); every arm under make paper's protocol. From "
        + ", ".join(f"`{s}`" for s in src)
        + ".",
        "",
        *table(["input", "masked-prediction target", "architecture", *sizes], main),
        "",
        "Paired differences (points): pretrained − its reference arm (`compare_to`: the scratch "
        "arm of its input; for mean pooling, the same base model through [CLS]), and − the best "
        "baseline (chosen on dev):",
        "",
        *table(
            [
                "input",
                "target",
                "architecture",
                *[f"− reference, {n}" for n in sizes],
                *[f"− best baseline, {n}" for n in sizes],
            ],
            diffs,
        ),
        "",
        "The table's targets, on point estimates (intervals beside them):",
        "",
        *target_lines(cells),
        *overlap_lines(cells),
    ]


# the input x target table's targets: (what, table, label counts, threshold in points)
# (code spans: the block's number check reads them as words, not results)
TARGETS = [
    ("`− best baseline ≥ −1 with all labels`", ("arm_vs_baseline", "vs_baseline"), ["all"], -1.0),
    (
        "`− best baseline ≥ +3 at 120 and 500 labels`",
        ("arm_vs_baseline", "vs_baseline"),
        ["120", "500"],
        3.0,
    ),
    ("`− its scratch arm ≥ +10 at 120 and 500 labels`", ("gain",), ["120", "500"], 10.0),
]


def target_lines(cells: pd.DataFrame) -> list[str]:
    """One sentence per target: the pretrained arms whose point estimates meet it, and the rest."""
    out = []
    for what, tables, sizes, threshold in TARGETS:
        met, missed, unknown = [], [], []
        for arm in ARMS:
            ref = (
                f"{arm} - scratch" if tables == ("gain",) else f"{arm} - "
            )  # gains vs a scratch arm only
            rows = [
                cells[
                    cells.table.isin(tables)
                    & cells.arm.str.startswith(ref)
                    & (cells["labels"] == n)
                ]
                for n in sizes
            ]
            if arm.startswith("scratch") or arm == "hgb" or not any(len(r) for r in rows):
                continue
            if not all(len(r) for r in rows):
                unknown.append(arm)
                continue
            said = ", ".join(f"{fmt(r.iloc[0], sign=True)} at `{n}`" for r, n in zip(rows, sizes))
            (met if all(r.iloc[0].value >= threshold for r in rows) else missed).append(
                f"{arm} ({said})"
            )
        out.append(
            f"- Target: {what}. Met by: {'; '.join(met) or 'none'}. Missed by: "
            f"{'; '.join(missed) or 'none'}."
            + (f" Not measured for: {', '.join(unknown)}." if unknown else "")
        )
    return out


def _knobs(chosen: str) -> str:
    return ", ".join(f"{k} `{v}`" for k, v in json.loads(chosen).items())


def collapsed_lines(sources: list[Path]) -> list[str]:
    """Runs whose classifier collapsed to one class (dev and test balanced accuracy exactly 0.5),
    from the runs.csv beside each results file: they pull their cell, and its gains, around."""
    out = []
    for folder in dict.fromkeys(src.parent for src in sources):
        runs_csv = folder / "runs.csv"
        if not runs_csv.is_file():
            continue
        runs = pd.read_csv(runs_csv)
        bad = collapsed_runs(runs)
        bad = bad[bad.arm.isin(list(ARMS))]
        out += [
            f"- Collapsed to one class: `{r.arm}` at `{r['labels']}` labels, seed `{r.seed}`, "
            f"{_knobs(r.chosen)} (chosen on the tuning seed); its cell's mean and every difference "
            "with it carry that run."
            for _, r in bad.iterrows()
        ]
    return out


def input_target_table(
    sources: list[str | Path] | tuple[str | Path, ...] = SOURCES,
    out: str | Path = "reports/continuous_study",
    readme: str | Path | None = "README.md",
) -> Path:
    """Gather ``sources`` (results.csv files, the first holding an arm wins; relative paths
    are the checkout's), write input_target.csv and input_target.md into ``out`` and the
    block into the page that holds it: ``readme`` or a page it links to (None: no block);
    returns the .md path."""
    cells = gather([ROOT / s for s in sources])
    if cells.empty:
        raise ValueError(
            f"none of {[str(s) for s in sources]} holds an arm of {sorted(ARMS)}: "
            "run the studies first"
        )
    out = ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    cells.to_csv(out / "input_target.csv", index=False)
    body = lines(cells)
    collapsed = collapsed_lines([ROOT / s for s in sources])
    if collapsed:
        body += ["", "Runs to read the table with:", "", *collapsed]
    (out / "input_target.md").write_text(
        "# SeisBert input x masked-prediction target\n\n" + "\n".join(body) + "\n"
    )
    if readme is not None:
        home = block_home(ROOT / readme, "input-target")
        rel = relative(out / "input_target.csv", home.parent)
        block = "\n".join(
            [START, f"Written by `scripts/input_target_table.py` ([{rel}]({rel})).", "", *body, END]
        )
        update_readme(home, block, START, END)
    return out / "input_target.md"
