"""The input x target table, from the results files of the studies that ran its arms.

    python scripts/input_target_table.py    # make paper's and scale=continuous's results.csv
    python scripts/input_target_table.py --readme none

Both studies follow one protocol (configs/study/quick.yaml: data, seeds, grid, budget), so an
arm's cells are taken from the first results file that holds them. Writes
reports/continuous_study/input_target.csv (every number shown, with the file it came from),
input_target.md, and the block between <!-- input-target:start/end --> in the page that holds
it: the README or a page it links to (docs/results.md). The body lives in
``seisbert.study.input_target``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seisbert.study.input_target import SOURCES, input_target_table


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", nargs="+", default=list(SOURCES))
    ap.add_argument("--out", default="reports/continuous_study")
    ap.add_argument(
        "--readme",
        default="README.md",
        help="the front page: the block is written into it or the page it links to that holds "
        "the block; 'none': no block",
    )
    args = ap.parse_args(argv)
    path = input_target_table(
        args.sources, args.out, None if args.readme == "none" else args.readme
    )
    print(path)
    return path


if __name__ == "__main__":
    main()
