"""The paper's study from its config to reports/paper/REPORT.md: the one call behind make paper.

``reproduce`` loads the study (``configs/study/<scale>.yaml`` with Hydra overrides), runs it
(every run folder is named by the hash of its full resolved config, so an interrupted study
continues where it stopped), and writes REPORT.md, results.csv (every reported number, with
its interval), runs.csv (one row per run), the figures beside them and the study's block
(``readme_marker``) in the page of the documentation that holds it: ``readme`` (README.md)
or a page it links to (docs/results.md), plus the README's front table where it has one
(``readme=null`` skips both). ``--blocks`` rewrites those blocks from the study's committed
results.csv without running anything. ``scripts/reproduce_paper.py`` is its command line.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from seisbert.analysis import attention_cli, token_figures
from seisbert.study.protocol import load_study, run_study
from seisbert.study.report import (
    plot_label_curve,
    plot_pool_curve,
    plot_pretraining_curves,
    read_cells,
    write_blocks,
    write_report,
)
from seisbert.study.results import result_cells

log = logging.getLogger(__name__)
ATTENTION_ARMS = ("mlm", "mlm_nsp")

NOTES = [
    "Data: the embedded synthetic Utah set (Boore stochastic method, Brune earthquakes, "
    "ripple-fired blasts; see docs/synthetic.md), not UUSS recordings. Its ceiling at trace level "
    "is about 90-93% (label noise 2%, single-shot blasts that look like earthquakes), below the "
    "paper's 96-98% CNN.",
    "Scale: the paper pretrained on 169,808 records with a GPU; this study uses the records stated "
    "above and a 4-layer, 128-wide encoder pretrained for the steps in the pretraining table on 2 "
    "CPU cores, so absolute numbers are lower and the pretraining benefit is smaller than with a "
    "long run.",
    "Vertical component only, as in the paper; 1-s windows, 1-20 Hz, median-scaled log10 PSD; "
    "K=150.",
    "Every transformer arm had the same learning-rate grid, chosen on dev per label count and "
    "extended at an edge (table above); the paper does not say how its scratch model was tuned. "
    "Every arm, transformer, trees or CNN, chooses at the tuning seed and reuses that choice for "
    "the other seeds.",
    "Balanced accuracy is our headline; the paper reports plain accuracy on a balanced set.",
]


def figures(
    summary: dict, cells, out: Path, umap: bool = True, attention_views: bool = True
) -> dict[str, str]:
    """Copy the figures of the runs next to the report; returns caption -> relative path."""
    figs = {
        "label curve (Fig. 7, all models)": plot_label_curve(cells, out / "label_curve.png").name
    }
    pool = plot_pool_curve(cells, out / "pool_curve.png")
    if pool is not None:
        figs["pool-size curve"] = pool.name
    curves = plot_pretraining_curves(summary["pretrain"], out / "pretraining_curves.png")
    if curves is not None:
        figs["pretraining curves (dev metric by step)"] = curves.name
    for m in summary["pretrain"]:
        name = f"{m['arm']}_seed{m['seed']}"
        src = Path(m.get("output_dir", "")) / "mlm_confusion.png"
        if src.exists():
            shutil.copyfile(src, out / f"mlm_confusion_{name}.png")
            figs[f"masked-token confusion, {name} (Fig. 6)"] = f"mlm_confusion_{name}.png"
    tokens_dir = summary["artifacts"]["tokens"]
    try:
        token_figures.main([tokens_dir, "--out", str(out), *([] if umap else ["--skip-umap"])])
        figs["token occurrence over event time (Fig. 5)"] = "token_occurrence.png"
        if umap:
            figs["UMAP of PSD windows coloured by token (Fig. 4)"] = "token_umap.png"
        figs["centroid spectra"] = "centroid_spectra.png"
    except Exception as err:  # a figure must not sink the report; say so in it
        log.warning("token views failed: %s", err)
    # the views read token inputs: the MLM base model, else MLM+SL
    base = next((m for arm in ATTENTION_ARMS for m in summary["pretrain"] if m["arm"] == arm), None)
    if attention_views and base:
        try:
            attention_cli.main(
                [
                    "--checkpoint",
                    base["base_checkpoint"],
                    "--batch",
                    "1",
                    "--out",
                    str(out / "attention"),
                ]
            )
            figs[f"attention views, {base['arm']} seed {base['seed']} (Figs. 8-10)"] = (
                "attention/index.html"
            )
        except Exception as err:
            log.warning("attention views failed: %s", err)
    return figs


def reproduce(argv: list[str]) -> Path:
    """Run the study that ``argv`` names (``scale=<name>``, default quick, and any key of
    configs/study/ as ``key=value``) and write its report; returns the REPORT.md path. With
    ``--blocks`` nothing runs: the documentation's blocks are rewritten from the results.csv
    already in ``out_dir``."""
    scale = next((a.split("=", 1)[1] for a in argv if a.startswith("scale=")), "quick")
    blocks_only = "--blocks" in argv
    study = load_study(scale, [a for a in argv if not a.startswith("scale=") and a != "--blocks"])
    out = Path(study.out_dir)
    if blocks_only:
        report = out / "REPORT.md"
        write_study_blocks(study, read_cells(out / "results.csv"), out, report)
        return report
    summary = run_study(study)
    cells = result_cells(summary)
    cells.to_csv(out / "results.csv", index=False)
    report = write_report(
        summary, cells, out, figures(summary, cells, out, study.umap, study.attention), NOTES
    )
    write_study_blocks(study, cells, out, report)
    log.info("wrote %s and %s", report, out / "results.csv")
    return report


def write_study_blocks(study, cells, out: Path, report: Path) -> list[Path]:
    """The study's block where the documentation holds it, and the README's front table."""
    if study.readme is None:
        return []
    pages = write_blocks(
        Path(study.readme), cells, out / "results.csv", report, study.readme_marker
    )
    log.info("wrote the %s block into %s", study.readme_marker, ", ".join(map(str, pages)))
    return pages
