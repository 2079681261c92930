"""Summarise a Hydra multirun: one row per job (its swept settings and final metrics), a plot.

    python scripts/sweep_summary.py multirun/2026-01-01_12-00-00
    python scripts/sweep_summary.py multirun/... --metric test/mlm_top5 --out reports/grid

Writes ``summary.csv``, ``summary.md`` and ``summary.png`` into ``--out`` (default: the
multirun folder) and prints the markdown table. Jobs are ranked by a **dev** metric, never a
test one: the default is the task's monitor (``task.monitor``, e.g. ``val/mlm_acc``);
``--metric`` picks another dev metric, and ``--show`` adds columns beside it (test metrics
included, for reading only). The body lives in ``seisbert.analysis.sweeps``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from seisbert.analysis.sweeps import summarize_sweep
from seisbert.logs import setup_logging


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("multirun", type=Path, help="a multirun folder (hydra.sweep.dir)")
    parser.add_argument(
        "--metric", help="dev metric to rank and plot (default: the task's monitor); never test/"
    )
    parser.add_argument(
        "--show", nargs="*", default=[], help="more metric columns for the markdown table"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: the multirun folder)")
    args = parser.parse_args(argv)
    setup_logging()
    return summarize_sweep(args.multirun, args.metric, args.show, args.out)


if __name__ == "__main__":
    main()
