"""The paper report and the documentation's generated blocks, written from ``results.csv`` alone.

``seisbert.study.results.result_cells`` holds every number (percent, one
decimal, with its interval); the functions here only lay those rows out. A block sits between
``<!-- {marker}:start -->`` and ``<!-- {marker}:end -->`` in the page that holds it: the
README itself or a page it links to (docs/results.md), so a block can move between pages without
a config change. Each block names the results file it was written from, so
``tests/test_study.py`` can check every number in it against that file. The README's front
table (``<!-- {marker}-front:start/end -->``) is the compact view of the same file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from seisbert.analysis.gapfill import CODA_AFTER_P_S
from seisbert.figures import pyplot, save_figure
from seisbert.study.results import MASKED, lookup, pretraining_log

ARM_NAMES = {
    "mlm": "MLM-pretrained",
    "mlm_nsp": "MLM+SL-pretrained",
    "scratch": "scratch (no pretraining)",
    "rf": "random forest on token ids",
    "rf_hist": "random forest on token histogram",
    "hgb": "boosted trees on PSD",
    "cnn": "CNN on PSD",
    "psd": "PSD-input MLM-pretrained",
    "psd_pool": "PSD-input MLM-pretrained + unlabeled pool",
    # no sizes in names: the pool table gives each pool's records from results.csv
    "psd_pool5k": "PSD-input MLM + small pool",
    "psd_pool20k": "PSD-input MLM + medium pool",
    "psd_pool50k": "PSD-input MLM + large pool",
    "mlm_psd": "PSD-input MLM",
    "mlm_psd_pool5k": "PSD-input MLM + small pool",
    "mlm_psd_pool20k": "PSD-input MLM + medium pool",
    "mlm_psd_pool50k": "PSD-input MLM + large pool",
    "scratch_psd": "PSD-input scratch",
    # the input x target arms: input / masked-prediction target (base models: mlm_*)
    "psd_rp": "PSD input, random-projection targets",
    "psd_regress": "PSD input, PSD regression",
    "both": "tokens + PSD input",
    "perceiver": "Perceiver, PSD input",
    "scratch_both": "tokens + PSD scratch",
    "scratch_perceiver": "Perceiver scratch",
    "psd_meanpool": "PSD-input MLM, mean pooling",
    "psd_rp_pool50k": "PSD input, random-projection targets + large pool",
    "mlm_psd_rp_pool50k": "PSD input, random-projection targets + large pool",
    "psd_rp_pool50k_3k": "PSD input, random-projection targets + large pool, 2x steps",
    "mlm_psd_rp_pool50k_3k": "PSD input, random-projection targets + large pool, 2x steps",
    "mlm_psd_rp": "PSD input, random-projection targets",
    "mlm_psd_regress": "PSD input, PSD regression",
    "mlm_both": "tokens + PSD input",
    "mlm_perceiver": "Perceiver, PSD input",
}
MONITOR_NAMES = {"mlm_acc_all_masked": "all-masked accuracy"}
# what each target asks; {x} is its threshold row (threshold/<name>) in results.csv
TARGET_NAMES = {
    "gain_over_scratch": "pretrained − its scratch arm ≥ +{gain_points} points, interval above 0",
    "best_vs_baseline": "best SeisBert arm ≥ best baseline (up to {baseline_labels_max} labels)",
    "best_vs_baseline_all": (
        "best SeisBert arm within {baseline_margin_all} points of the best baseline"
    ),
    "masked_vs_left_neighbour": "all-masked accuracy ÷ left-neighbour accuracy ≥ {token_vs_left}",
    "pool_rises": "largest pool − no pool > 0, interval above 0",
}
MASKED_NAMES = {
    "first_half": "first half masked",
    "second_half": "second half masked",
    "random_76": "76% random masked",
    "all": "all masked",
}
TOKEN_COLUMNS = {
    "mlm_acc_all_masked": "all masked",
    "mlm_acc": "80/10/10",
    "mlm_top5": "top-5 (80/10/10)",
    "baseline_random_acc": "random 1/K",
    "baseline_step_mode_acc": "per-step mode",
    "baseline_left_neighbour_acc": "left neighbour",
    "sl_acc": "source linking",
    "sl_chance": "source-linking chance",
}


def name(arm: str) -> str:
    return " − ".join(ARM_NAMES.get(a, a) for a in arm.split(" - "))


def fmt(r, interval: bool = True, sign: bool = False) -> str:
    """``79.1 [76.0, 82.3]`` from a results row (– when missing)."""
    if r is None or pd.isna(r.value):
        return "–"
    v = f"{r.value:+.1f}" if sign else f"{r.value:.1f}"
    return f"{v} [{r.lo:.1f}, {r.hi:.1f}]" if interval and not pd.isna(r.lo) else v


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(r) + " |" for r in rows],
    ]


def arms_of(cells: pd.DataFrame, kind: str) -> list[str]:
    return list(dict.fromkeys(cells[cells.table == kind].arm))


def by_labels(sizes) -> list[str]:
    """Label counts in increasing order, ``all`` last."""
    return sorted(
        dict.fromkeys(sizes), key=lambda n: (n == "all", int(n) if str(n).isdigit() else 0)
    )


def label_counts(cells: pd.DataFrame) -> list[str]:
    return by_labels(cells[cells.table == "finetune"]["labels"])


def curve_table(cells: pd.DataFrame, metric: str = "balanced_accuracy") -> list[str]:
    """arm x label count: the test ``metric`` with its interval."""
    sizes = label_counts(cells)
    rows = [
        [name(a), *[fmt(lookup(cells, "finetune", a, n, metric)) for n in sizes]]
        for a in arms_of(cells, "finetune")
    ]
    return table(["model", *sizes], rows)


def headline_table(cells: pd.DataFrame) -> list[str]:
    rows = []
    for a in arms_of(cells, "finetune"):
        paper = lookup(cells, "paper", a, "all", "accuracy")
        rows.append(
            [
                name(a),
                fmt(lookup(cells, "finetune", a, "all", "balanced_accuracy")),
                fmt(lookup(cells, "finetune", a, "all", "event_balanced_accuracy")),
                fmt(lookup(cells, "finetune", a, "all", "accuracy")),
                fmt(paper, interval=False),
            ]
        )
    return table(
        [
            "model",
            "balanced accuracy",
            "event-level balanced accuracy",
            "accuracy",
            "paper accuracy",
        ],
        rows,
    )


def difference_table(cells: pd.DataFrame, kind: str) -> list[str]:
    sizes = by_labels(cells[cells.table == kind]["labels"])
    rows = [
        [name(a), *[fmt(lookup(cells, kind, a, n, "balanced_accuracy"), sign=True) for n in sizes]]
        for a in arms_of(cells, kind)
    ]
    return table(["difference (points)", *sizes], rows)


def verdict(r) -> str:
    if r.lo > 0:
        return "the interval lies above zero"
    if r.hi < 0:
        return "the interval lies below zero"
    return "the interval spans zero: no clear difference"


def difference_sentences(cells: pd.DataFrame, kind: str) -> list[str]:
    """One sentence per paired difference, its words decided by its interval."""
    out = []
    for _, r in cells[cells.table == kind].iterrows():
        out.append(
            f"- {name(r.arm)} at {r['labels']} labels: {fmt(r, sign=True)} points; {verdict(r)}."
        )
    return out


def masked_table(cells: pd.DataFrame) -> list[str]:
    header, rows = ["fine-tuned from"], []
    for m in MASKED:
        header += [f"{MASKED_NAMES[m]}: balanced acc", "predicted blast"]
    for a in arms_of(cells, "masked"):
        rows.append(
            [
                name(a),
                *[
                    fmt(lookup(cells, "masked", a, "all", f"{m}/{k}"))
                    for m in MASKED
                    for k in ("balanced_accuracy", "predicted_blast_fraction")
                ],
            ]
        )
    return table(header, rows)


def token_table(cells: pd.DataFrame) -> list[str]:
    rows = [
        [name(a), *[fmt(lookup(cells, "tokens", a, "", k)) for k in TOKEN_COLUMNS]]
        for a in arms_of(cells, "tokens")
    ]
    return table(["base model", *TOKEN_COLUMNS.values()], rows)


WINDOW_COLUMNS = {
    "psd": "model",
    "baseline_copy_left": "copy left window",
    "baseline_step_mean": "per-step train mean",
    "baseline_interpolation": "linear interpolation",
}


def _plain(r) -> str:
    return "–" if r is None else f"{r.value:.3f}"


def window_table(cells: pd.DataFrame) -> list[str]:
    """Masked-window regression: MSE (scaled log-PSD) and log-spectral distance, model beside
    baselines."""
    header = [
        "base model",
        *[f"{v}: MSE" for v in WINDOW_COLUMNS.values()],
        *[f"{v}: LSD (dB)" for v in WINDOW_COLUMNS.values()],
    ]
    rows = [
        [
            name(a),
            *[
                _plain(lookup(cells, "windows", a, "", f"{g}_{e}"))
                for e in ("mse", "lsd")
                for g in WINDOW_COLUMNS
            ],
        ]
        for a in arms_of(cells, "windows")
    ]
    return table(header, rows)


def gapfill_table(cells: pd.DataFrame) -> list[str]:
    """LSD (dB) on the gap per gap length and position: each base model beside the baselines."""
    gaps = cells[cells.table == "gapfill"]
    arms = list(dict.fromkeys(gaps.arm))
    header = ["gap", "starts at", *[GAP_NAMES.get(a, name(a)) for a in arms]]
    rows = []
    for metric in dict.fromkeys(gaps.metric):
        length, position = metric.split("/")
        got = [lookup(cells, "gapfill", a, "", metric) for a in arms]
        best = min(r.value for r in got if r is not None)
        rows.append(
            [
                length.replace("s", " s"),
                POSITION_NAMES.get(position, position),
                *[
                    "–"
                    if r is None
                    else (f"**{r.value:.2f}**" if r.value == best else f"{r.value:.2f}")
                    for r in got
                ],
            ]
        )
    return table(header, rows)


def gapfill_lines(cells: pd.DataFrame) -> list[str]:
    if not arms_of(cells, "gapfill"):
        return []
    return [
        "## Gap filling",
        "",
        "A run of missing windows [MASK]ed and predicted from both sides (a token model: the "
        "expected centroid under its softmax), scored by the log-spectral distance in dB on the "
        "gap over the first test records (`scripts/fill_gaps.py evaluate`'s metric; lower is "
        "better, best in bold; a base model's value is the mean over its pretraining seeds, the "
        "range in results.csv):",
        "",
        *gapfill_table(cells),
        "",
    ]


GAP_NAMES = {"interpolation": "linear interpolation", "step_mean": "per-step train mean"}
POSITION_NAMES = {
    "pre_p": "record start (pre-P)",
    "p": "P",
    "s": "S",
    "coda": f"coda (P + {CODA_AFTER_P_S:g} s)",
}


def pool_points(cells: pd.DataFrame) -> list[tuple[str, int]]:
    """(arm, unlabeled pool records) of the pool-size curve, smallest pool first."""
    pools = cells[cells.table == "pool"]
    return sorted(((r.arm, int(r.value)) for _, r in pools.iterrows()), key=lambda p: p[1])


def pool_table(cells: pd.DataFrame) -> list[str]:
    points = pool_points(cells)
    sizes = [
        n
        for n in label_counts(cells)
        if any(lookup(cells, "finetune", a, n, "balanced_accuracy") is not None for a, _ in points)
    ]
    rows = [
        [
            name(a),
            f"{records}",
            *[fmt(lookup(cells, "finetune", a, n, "balanced_accuracy")) for n in sizes],
        ]
        for a, records in points
    ]
    return table(
        ["base model pretrained with", "unlabeled records", *[f"{n} labels" for n in sizes]], rows
    )


def plot_pool_curve(
    cells: pd.DataFrame, path: Path, metric: str = "balanced_accuracy"
) -> Path | None:
    """Test ``metric`` against the unlabeled pool's size, one line per label count."""
    plt = pyplot()
    points = pool_points(cells)
    if len(points) < 2:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for n in label_counts(cells):
        got = [(records, lookup(cells, "finetune", a, n, metric)) for a, records in points]
        got = [(x, r) for x, r in got if r is not None]
        if len(got) < 2:
            continue
        xs, ys = np.array([x for x, _ in got], float), np.array([r.value for _, r in got], float)
        err = np.abs(np.array([[r.lo for _, r in got], [r.hi for _, r in got]], float) - ys)
        ax.errorbar(xs, ys, yerr=err, fmt="-o", capsize=3, label=f"{n} labels")
    ax.set_xscale("symlog", linthresh=1000)
    ax.set_xlabel("unlabeled pool records added to pretraining")
    ax.set_ylabel(f"test {metric.replace('_', ' ')} (%)")
    ax.legend(fontsize=8)
    ax.set_title("Pool-size curve (same pretraining steps; bootstrap intervals)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def budget_table(cells: pd.DataFrame) -> list[str]:
    sizes = label_counts(cells)

    def cell(arm, n):
        if lookup(cells, "finetune", arm, n, "balanced_accuracy") is None:
            return "–"  # the arm was not run at this label count
        got = [lookup(cells, "budget", arm, n, k) for k in ("epochs", "steps")]
        return "/".join(str(int(r.value)) for r in got if r is not None) or "fit to completion"

    return table(
        ["arm: epochs/steps at", *sizes],
        [[name(a), *[cell(a, n) for n in sizes]] for a in arms_of(cells, "finetune")],
    )


def setup(cells: pd.DataFrame) -> dict:
    s = cells[(cells.table == "setup") & (cells.arm.fillna("") == "")].set_index("metric")["value"]
    return {k: (int(v) if float(v).is_integer() else v) for k, v in s.items()}


def base_seed_words(cells: pd.DataFrame) -> str:
    """'3 pretraining seeds per base model (1 for a, b)': the study's, then the base models with
    fewer."""
    own = cells[
        (cells.table == "setup") & (cells.arm.fillna("") != "") & (cells.metric == "pretrain_seeds")
    ]
    fewer = "; ".join(
        f"{int(n)} for {', '.join(r.arm)}" for n, r in own.groupby("value", sort=False)
    )
    seeds = count(setup(cells)["pretrain_seeds"], "pretraining seed")
    return f"{seeds} per base model{f' ({fewer})' if fewer else ''}"


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def tuning_seed_words(s: dict) -> str:
    """Where every arm chose its setting; results files older than the shared tuning seed have no
    row."""
    return (
        ""
        if "tune_seed" not in s
        else (
            f", every arm at fine-tuning seed {s['tune_seed']}, its choice reused for "
            "the other seeds"
        )
    )


def setup_sentence(cells: pd.DataFrame) -> str:
    s = setup(cells)
    return (
        f"Data: {s['records']} records of {s['events']} synthetic events; the test split holds "
        f"{s['test_records']} records of {s['test_events']} events. "
        f"{count(s['seeds'], 'fine-tuning seed')}, {base_seed_words(cells)}. Every transformer arm "
        f"chose its learning rate on dev from one grid of {s['lr_grid_size']} log-spaced values "
        "(extended while the choice sat on an edge), the CNN and trees a grid of the same "
        f"size{tuning_seed_words(s)}; every neural arm trained for {s['budget_epochs']} epochs (at "
        f"least {s['budget_min_steps']} steps) with early stopping on dev balanced accuracy "
        f"(patience {s['patience']} checks), best dev checkpoint restored. Brackets: "
        f"{s['ci_level']}% bootstrap intervals over test events"
        f"{' and seeds' if s['seeds'] > 1 else ''}"
        f"{' (masked tokens: range over pretraining seeds)' if s['pretrain_seeds'] > 1 else ''}. "
        f"Percent, test split. Its runs took {s['minutes']} core-minutes (run durations summed; "
        f"the call that wrote this report: {s['invocation_minutes']} min, reusing finished runs)."
    )


def pretraining_table(cells: pd.DataFrame) -> list[str]:
    """Where each base model stopped: its data, steps, passes over the data, and its dev curve."""

    def cell(arm, metric, spec):
        r = lookup(cells, "pretrain_curve", arm, "", metric)
        return "–" if r is None else format(r.value, spec)

    rows = [
        [
            name(a),
            cell(a, "records", ".0f"),
            cell(a, "steps", ".0f"),
            cell(a, "passes", ".1f"),
            cell(a, "dev_last", ".1f"),
            cell(a, "rise_first_half", "+.1f"),
            cell(a, "rise_second_half", "+.1f"),
        ]
        for a in arms_of(cells, "pretrain_curve")
    ]
    return table(
        [
            "base model",
            "pretraining records",
            "steps",
            "passes over them",
            "dev checkpoint metric at the end",
            "rise, first half",
            "rise, second half",
        ],
        rows,
    )


def target_limits(cells: pd.DataFrame) -> dict:
    """The thresholds of ``study.targets`` as results.csv holds them (rows ``threshold/<name>``)."""
    t = cells[cells.table == "target"]
    return {
        m.split("/", 1)[1]: (int(v) if float(v).is_integer() else v)
        for m, v in zip(t.metric, t.value)
        if m.startswith("threshold/")
    }


def target_table(cells: pd.DataFrame) -> list[str]:
    """Each target of ``study.targets``: the comparison, its value with interval, met or why not."""
    t, limits = cells[cells.table == "target"], target_limits(cells)
    rows = [
        [
            TARGET_NAMES[r.metric].format(**limits),
            name(r.arm),
            r["labels"] or "–",
            fmt(r, sign=r.metric != "masked_vs_left_neighbour"),
            r.note,
        ]
        for _, r in t.iterrows()
        if "/" not in r.metric
    ]  # thresholds and shortfalls are in the words
    return table(["target", "comparison", "labels", "value", "verdict"], rows)


def pairing(cells: pd.DataFrame) -> str:
    return "seed and test event" if setup(cells)["seeds"] > 1 else "test event"


def results_lines(cells: pd.DataFrame) -> list[str]:
    """The tables and sentences shared by REPORT.md and the README block."""
    targets = (
        [
            f"**Targets** (study.targets; differences in points, paired by {pairing(cells)}):",
            "",
            *target_table(cells),
            "",
        ]
        if (cells.table == "target").any()
        else []
    )
    collapsed = [
        f"- {name(r.arm)} at {r['labels']} labels, seed {int(r.value)} ({r.note} at the tuning "
        "seed): dev and test balanced accuracy at chance, one class predicted; its cell and every "
        "difference with it carry it."
        for _, r in cells[cells.table == "collapsed"].iterrows()
    ]
    collapsed = (
        ["**Collapsed runs** (read the tables with them):", "", *collapsed, ""] if collapsed else []
    )
    pretraining = (
        [
            "**Pretraining** (each base model's checkpoint metric on dev, all-masked accuracy in "
            "percent; rises from the first check to the middle and from the middle to the end):",
            "",
            *pretraining_table(cells),
            "",
        ]
        if arms_of(cells, "pretrain_curve")
        else []
    )
    return [
        setup_sentence(cells),
        "",
        *targets,
        *collapsed,
        *pretraining,
        "**Masked-token prediction** (every selected position masked first):",
        "",
        *token_table(cells),
        "",
        *(
            [
                "**Masked-window regression** (every selected window masked; lower is better):",
                "",
                *window_table(cells),
                "",
            ]
            if arms_of(cells, "windows")
            else []
        ),
        "**Fine-tuning with every label** (balanced accuracy is the headline):",
        "",
        *headline_table(cells),
        "",
        "**Label-limited curve** (balanced accuracy):",
        "",
        *curve_table(cells),
        "",
        f"**Pretraining gain**, paired by {pairing(cells)}:",
        "",
        *difference_table(cells, "gain"),
        "",
        *difference_sentences(cells, "gain"),
        "",
        "**Best SeisBert arm − best baseline** (each chosen on dev):",
        "",
        *difference_table(cells, "vs_baseline"),
        "",
        *difference_sentences(cells, "vs_baseline"),
        "",
        *(
            [
                "**Every pretrained arm − best baseline** (the baseline chosen on dev):",
                "",
                *difference_table(cells, "arm_vs_baseline"),
                "",
            ]
            if len(arms_of(cells, "arm_vs_baseline")) > 1
            else []
        ),
        *(
            [
                "**Pool-size curve**: base models pretrained for the same steps with more "
                "unlabeled records (balanced accuracy):",
                "",
                *pool_table(cells),
                "",
            ]
            if pool_points(cells)
            else []
        ),
        "**Masked inputs** (classifier fine-tuned with every label):",
        "",
        *masked_table(cells),
        "",
    ]


def markers(marker: str = "results") -> tuple[str, str]:
    return f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"


START, END = markers("results")


def readme_block(
    cells: pd.DataFrame, results_path: str, report_path: str, marker: str = "results"
) -> str:
    start, end = markers(marker)
    lines = [
        start,
        f"Written by `scripts/reproduce_paper.py` from [{results_path}]({results_path}); "
        f"details, figures and what was tried: [{report_path}]({report_path}).",
        "",
        *results_lines(cells),
        end,
    ]
    return "\n".join(lines)


def update_readme(readme: Path, block: str, start: str = START, end: str = END) -> Path:
    """Replace the block between ``start`` and ``end``, or else (the results block) the body of
    the ``## Results`` section up to its next heading."""
    text = readme.read_text()
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    elif start != START:
        raise ValueError(
            f"{readme} has no {start} ... {end} block to write into; add the two lines where it "
            "goes"
        )
    else:
        m = re.search(r"^## Results\n", text, flags=re.M)
        if m is None:
            raise ValueError(
                f"{readme} has no '## Results' section and no {START} block to write into"
            )
        nxt = re.search(r"^#{2,3} ", text[m.end() :], flags=re.M)
        stop = m.end() + (nxt.start() if nxt else len(text) - m.end())
        text = text[: m.end()] + "\n" + block + "\n\n" + text[stop:]
    readme.write_text(text)
    return readme


FRONT_ROWS = 10  # the README's table stays readable at a glance; every arm is in docs/results.md
RESULT_COLUMNS = ("value", "lo", "hi", "n_seeds", "n_events")


def read_cells(path: Path) -> pd.DataFrame:
    """A results.csv as ``result_cells`` returned it: empty labels and arms stay ``""`` (how
    ``lookup`` finds the label-free tables), the number columns are floats."""
    cells = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in RESULT_COLUMNS:
        cells[column] = pd.to_numeric(cells[column].replace("", None), errors="coerce")
    return cells


def relative(path: Path, to: Path) -> str:
    """``path`` as a link from a page in folder ``to`` (``../`` where needed); absolute where no
    relative path exists (another drive)."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(to).resolve())).as_posix()
    except ValueError:
        return str(Path(path).resolve())


def linked_pages(page: Path) -> list[Path]:
    """The markdown pages ``page`` links to by relative path, in the order it links them."""
    found = []
    for target in re.findall(r"\]\(([^)\s#]+\.md)(?:#[^)]*)?\)", page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # a URL, not a page of this checkout
            continue
        linked = (page.parent / target).resolve()
        if linked.is_file() and linked not in found:
            found.append(linked)
    return found


def block_home(readme: Path, marker: str) -> Path:
    """The page that holds ``marker``'s block: ``readme`` itself, else the first page it links
    to that does; ``readme`` when none does (``update_readme`` then says what is missing)."""
    start, end = markers(marker)
    for page in [Path(readme), *linked_pages(Path(readme))]:
        text = page.read_text()
        if start in text and end in text:
            return page
    return Path(readme)


def front_marker(marker: str) -> str:
    """The README's compact block of the same results file (a valid marker: letters, '-')."""
    return f"{marker}-front"


def front_arms(cells: pd.DataFrame, max_rows: int = FRONT_ROWS) -> tuple[list[str], list[str]]:
    """(shown, left out): the fine-tuning arms measured at the most label counts, at most
    ``max_rows``, in the study's order; ties keep that order, so the arms dropped first are
    the late ablations measured at fewer label counts."""
    arms, sizes = arms_of(cells, "finetune"), label_counts(cells)
    measured = {
        a: sum(lookup(cells, "finetune", a, n, "balanced_accuracy") is not None for n in sizes)
        for a in arms
    }
    keep = set(sorted(arms, key=lambda a: -measured[a])[:max_rows])
    return [a for a in arms if a in keep], [a for a in arms if a not in keep]


def front_table(cells: pd.DataFrame, max_rows: int = FRONT_ROWS) -> list[str]:
    """The label-limited curve, compact: test balanced accuracy with its interval, one row per
    arm (at most ``max_rows``), one column per label count."""
    shown, _ = front_arms(cells, max_rows)
    sizes = label_counts(cells)
    rows = [
        [name(a), *[fmt(lookup(cells, "finetune", a, n, "balanced_accuracy")) for n in sizes]]
        for a in shown
    ]
    return table(["model", *[f"{n} labels" for n in sizes]], rows)


def front_block(
    cells: pd.DataFrame,
    results_path: str,
    full_path: str,
    marker: str = front_marker("headline"),
    max_rows: int = FRONT_ROWS,
) -> str:
    """The README's headline table: ``front_table`` with the data it was measured on, the runs
    that weigh on a shown cell, and the page holding every table."""
    s, (shown, left) = setup(cells), front_arms(cells, max_rows)
    collapsed = [
        f"- {name(r.arm)} at {r['labels']} labels: one seed's classifier (seed {int(r.value)}) "
        "collapsed to one class; the cell carries it."
        for _, r in cells[cells.table == "collapsed"].iterrows()
        if r.arm in shown
    ]
    start, end = markers(marker)
    lines = [
        start,
        "Test balanced accuracy (percent) by the labelled records each model was fine-tuned on, "
        f"with {s['ci_level']}% bootstrap intervals over test events and seeds: "
        f"{s['records']} records of {s['events']} synthetic events, "
        f"{count(s['seeds'], 'fine-tuning seed')}. Written by `scripts/reproduce_paper.py` from "
        f"[{results_path}]({results_path}); every table (targets, paired gains, pretraining): "
        f"[{full_path}]({full_path}).",
        "",
        *front_table(cells, max_rows),
        *(["", *collapsed] if collapsed else []),
        *(
            ["", f"Not shown (measured at fewer label counts): {', '.join(map(name, left))}."]
            if left
            else []
        ),
        end,
    ]
    return "\n".join(lines)


def write_blocks(
    readme: Path, cells: pd.DataFrame, results: Path, report: Path, marker: str = "results"
) -> list[Path]:
    """Write ``marker``'s block into the page that holds it (``block_home``: the README or a
    page it links to), its links relative to that page, and the README's front table
    (``front_marker``) where the README has one; returns the pages written."""
    readme = Path(readme)
    home = block_home(readme, marker)
    block = readme_block(
        cells, relative(results, home.parent), relative(report, home.parent), marker
    )
    written = [update_readme(home, block, *markers(marker))]
    front = front_marker(marker)
    start, end = markers(front)
    text = readme.read_text()
    if start in text and end in text:  # only the front page's chosen study has one
        block = front_block(
            cells, relative(results, readme.parent), relative(home, readme.parent), front
        )
        written.append(update_readme(readme, block, start, end))
    return written


def plot_label_curve(cells: pd.DataFrame, path: Path, metric: str = "balanced_accuracy") -> Path:
    """Paper Fig. 7 for every arm: test metric vs. labelled records, with its interval."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arm in arms_of(cells, "finetune"):
        sizes = [
            n for n in label_counts(cells) if lookup(cells, "finetune", arm, n, metric) is not None
        ]
        x = [lookup(cells, "budget", arm, n, "train_records") for n in sizes]
        r = [lookup(cells, "finetune", arm, n, metric) for n in sizes]
        if any(v is None for v in x):
            continue
        xs, ys = np.array([v.value for v in x], float), np.array([v.value for v in r], float)
        err = np.abs(np.array([[v.lo for v in r], [v.hi for v in r]], float) - ys)
        style = "--s" if arm in ("rf", "rf_hist", "hgb", "cnn") else "-o"  # baselines dashed
        ax.errorbar(xs, ys, yerr=err, fmt=style, capsize=3, label=name(arm))
    ax.set_xscale("log")
    ax.set_xlabel("labelled training records")
    ax.set_ylabel(f"test {metric.replace('_', ' ')} (%)")
    ax.axhline(50, color="grey", lw=0.6, ls=":")
    ax.legend(fontsize=8)
    ax.set_title("Label-limited fine-tuning (bootstrap intervals over test events and seeds)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def plot_pretraining_curves(pretrain: list[dict], path: Path) -> Path | None:
    """Each base model's monitored dev metric over its steps: where pretraining flattened."""
    plt = pyplot()
    curves = [(m, pretraining_log(m.get("output_dir", ""))) for m in pretrain]
    curves = [(m, c) for m, c in curves if c is not None]
    if not curves:
        return None
    monitors = list(dict.fromkeys(c[0] for _, c in curves))
    colour = {
        a: f"C{i}" for i, a in enumerate(dict.fromkeys(m["arm"] for m, _ in curves))
    }  # one per base model
    fig, axes = plt.subplots(1, len(monitors), figsize=(6 * len(monitors), 4), squeeze=False)
    for ax, monitor in zip(axes[0], monitors):
        for m, (mon, frame) in curves:
            if mon == monitor:
                scale = 100 if "acc" in monitor else 1
                style = ("-", "--", ":", "-.")[int(m["seed"]) % 4]  # its pretraining seed
                ax.plot(
                    frame["step"],
                    scale * frame[monitor],
                    style,
                    marker="o",
                    ms=3,
                    color=colour[m["arm"]],
                    label=f"{m['arm']} seed {m['seed']}",
                )
        ax.set_xlabel("pretraining step")
        ax.set_ylabel(
            f"dev {monitor.split('/')[-1].replace('_', ' ')}" + (" (%)" if "acc" in monitor else "")
        )
        ax.legend(fontsize=7)
    fig.suptitle("Pretraining: the checkpoint-selection metric on dev")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def curve_words(cells: pd.DataFrame, base: str) -> str:
    """Where a base model's pretraining stood when it stopped, from table ``pretrain_curve``."""
    first, second, steps, passes = (
        lookup(cells, "pretrain_curve", base, "", m)
        for m in ("rise_first_half", "rise_second_half", "steps", "passes")
    )
    if second is None:
        return ""
    metric = MONITOR_NAMES.get(second.note.split("/")[-1], second.note)
    state = (
        "it had flattened"
        if second.value <= 0
        else "still rising, but slowing"
        if second.value < first.value
        else "still rising as fast"
    )
    return (
        f"its base model's dev {metric} moved {first.value:+.1f}, then {second.value:+.1f} over "
        f"the two halves of its {int(steps.value)} steps"
        + ("" if passes is None else f" (each pretraining record seen {passes.value:.1f} times)")
        + f": {state}"
    )


def base_of(cells: pd.DataFrame, arm: str) -> str | None:
    r = lookup(cells, "base", arm, "", "base_model")
    return None if r is None else r.note


def why_gain(cells: pd.DataFrame, missed: pd.DataFrame) -> list[str]:
    s, lines, widest = setup(cells), [], 0.0
    for arm in dict.fromkeys(missed.arm):
        pre, ref = arm.split(" - ")
        gains = [lookup(cells, "gain", arm, n, "balanced_accuracy") for n in label_counts(cells)]
        gains = [g for g in gains if g is not None]
        width = max(g.hi - g.lo for g in gains)
        widest = max(widest, width)
        lines.append(
            f"- {name(pre)} over {name(ref)}, every label count: "
            + ", ".join(f"{g['labels']}: {fmt(g, sign=True)}" for g in gains)
            + f". The widest interval spans {width:.1f} points ({s['test_events']} test events, "
            + f"{count(s['seeds'], 'seed')})"
            + (f"; {curve_words(cells, base_of(cells, pre))}." if base_of(cells, pre) else ".")
        )
    scratch = {a.split(" - ")[1] for a in missed.arm}
    ablations = [
        r
        for _, r in cells[
            (cells.table == "gain") & (cells.metric == "balanced_accuracy")
        ].iterrows()
        if r.arm.split(" - ")[1] not in scratch
    ]
    if ablations:
        lines.append(
            "- Pretraining ablations in this study (same protocol, paired): "
            + "; ".join(
                f"{name(r.arm)} at {r['labels']} labels {fmt(r, sign=True)}" for r in ablations
            )
            + "."
        )
    if ablations and not any(r.lo > 0 for r in ablations):
        lines.append(
            "- What would close it: not more of the same. No ablation above moved the result "
            "clearly (each interval reaches zero or below), though a longer-pretrained base model "
            "is better at its own task (pretraining table). Untested here: a larger encoder fed by "
            "the pool, and more test events (the default data size) to narrow intervals up to "
            f"{widest:.1f} points wide."
        )
    else:
        lines.append(
            "- What would close it: a base model that is better at its own task (its dev curve had "
            "not flattened), and more test events and seeds, since an interval this wide cannot "
            "tell +5 from +10."
        )
    return lines


def why_masked(cells: pd.DataFrame, missed: pd.DataFrame) -> list[str]:
    lines = []
    for arm in missed.arm:
        got = {
            m: lookup(cells, "tokens", arm, "", m)
            for m in (
                "mlm_acc_all_masked",
                "baseline_left_neighbour_acc",
                "baseline_step_mode_acc",
                "baseline_random_acc",
            )
        }
        if any(v is None for v in got.values()):
            continue
        acc, left, mode, rand = (got[m].value for m in got)
        lines.append(
            f"- {name(arm)}: all masked {acc:.1f}% against left neighbour {left:.1f}%, per-step "
            f"mode {mode:.1f}% and random {rand:.1f}%: the left neighbour alone is "
            f"{left / rand:.0f}x chance, so neighbouring windows often share their target; "
            f"{curve_words(cells, arm)}."
        )
    lines.append(
        "- What would close it: longer pretraining while the curve still rises. The bar moves with "
        "the targets (the left-neighbour guess is strong wherever neighbouring windows share a "
        "target), so the ratio compares base models fairly only at the same targets."
    )
    return lines


def why_pool(cells: pd.DataFrame, missed: pd.DataFrame) -> list[str]:
    lines = []
    for arm in dict.fromkeys(missed.arm):
        big, small = arm.split(" - ")
        b, a = base_of(cells, big), base_of(cells, small)
        rows = [lookup(cells, "gain", arm, n, "balanced_accuracy") for n in label_counts(cells)]
        lines.append(
            f"- {name(big)} − {name(small)}: "
            + ", ".join(f"{r['labels']} labels {fmt(r, sign=True)}" for r in rows if r is not None)
            + "."
        )
        passes = [lookup(cells, "pretrain_curve", x, "", "passes") for x in (a, b)]
        if all(p is not None for p in passes):
            lines.append(
                f"- At the same steps the pooled base model saw each record {passes[1].value:.1f} "
                f"times, the other {passes[0].value:.1f} times: the pool changed which records "
                f"were seen, not how many updates were made; {curve_words(cells, b)}."
            )
        longer = [
            r
            for _, r in cells[
                (cells.table == "gain") & (cells.metric == "balanced_accuracy")
            ].iterrows()
            if r.arm.split(" - ")[1] == big
        ]
        if longer:
            lines.append(
                f"- The pooled base model pretrained longer ({name(longer[0].arm)}): "
                + ", ".join(f"{r['labels']} labels {fmt(r, sign=True)}" for r in longer)
                + "."
            )
    widths = [r.hi - r.lo for _, r in missed.iterrows()]
    lines.append(
        "- What would close it: pretraining steps that grow with the pool (at a fixed step budget "
        "a pool only replaces repeats of the labelled set's records), and more seeds and test "
        f"events to narrow an interval {max(widths):.1f} points wide."
    )
    return lines


WHY = {
    "gain_over_scratch": why_gain,
    "masked_vs_left_neighbour": why_masked,
    "pool_rises": why_pool,
}


def missed_lines(cells: pd.DataFrame) -> list[str]:
    """Each missed target: by how much, the measured evidence for why, and what would close it."""
    t = cells[(cells.table == "target") & ~cells.metric.str.contains("/", na=False)]
    missed = t[~t.note.str.startswith("met")]
    if missed.empty:
        return []
    limits = target_limits(cells)
    lines = ["## Missed targets: by how much, why, and what would close it", ""]
    for kind, rows in missed.groupby("metric", sort=False):
        lines += [f"**{TARGET_NAMES[kind].format(**limits)}**", ""]
        lines += [
            f"- {name(r.arm)}"
            + (f" at {r['labels']} labels" if pd.notna(r["labels"]) and r["labels"] else "")
            + f": "
            f"{fmt(r, sign=kind != 'masked_vs_left_neighbour')}, {r.note}."
            for _, r in rows.iterrows()
        ]
        lines += [*WHY.get(kind, lambda *_: [])(cells, rows), ""]
    return lines


def tuning_rows(runs: pd.DataFrame) -> list[str]:
    first = runs.drop_duplicates(["arm", "labels"])
    return table(
        ["arm", "labels", "chosen on dev", "tried (dev balanced accuracy)"],
        [
            [name(r.arm), str(r["labels"]), f"`{r.chosen}`", f"`{r.tried}`"]
            for _, r in first.iterrows()
        ],
    )


def write_report(
    summary: dict, cells: pd.DataFrame, out: Path, figures: dict[str, str], notes: list[str]
) -> Path:
    """REPORT.md: the shared tables, budgets, tuning, figures, notes and timings."""
    t = summary["timings_s"]
    lines = [
        f"# SeisBert: the paper's study on our data ({summary['scale']} scale)",
        "",
        f"Produced by `python scripts/reproduce_paper.py scale={summary['scale']}`; every number "
        "below is a row of [results.csv](results.csv) (per-run rows: [runs.csv](runs.csv)).",
        "",
        *results_lines(cells),
        *missed_lines(cells),
        *gapfill_lines(cells),
        "## Budgets (the same epochs for every neural arm; trees fit to completion)",
        "",
        *budget_table(cells),
        "",
        "## Figures",
        "",
        *[f"- {caption}: ![{caption}]({path})" for caption, path in figures.items()],
        "",
        "## What was tried (one grid per arm kind, chosen on dev)",
        "",
        *tuning_rows(summary["runs"]),
        "",
        "## What differs from the paper, and why",
        "",
        *[f"- {n}" for n in notes],
        "",
        "## Timings (s)",
        "",
        *table(["step", "seconds"], [[k, f"{v:.0f}"] for k, v in t.items()]),
        "",
    ]
    path = out / "REPORT.md"
    path.write_text("\n".join(lines))
    return path
