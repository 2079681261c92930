"""Reproduce the paper's study and write reports/paper/REPORT.md.

    python scripts/reproduce_paper.py                # quick scale: ~100 min on 2 CPU cores (jobs=2)
    python scripts/reproduce_paper.py scale=full     # the headline study (hours on CPU, or a GPU)
    python scripts/reproduce_paper.py seeds=[0] out_dir=reports/try   # any key of configs/study/
    python scripts/reproduce_paper.py scale=full --blocks   # rewrite the docs' blocks, run nothing

Every run folder is named by the hash of its full resolved config: a run is reused only
when nothing about it changed, so an interrupted study continues where it stopped and a
changed budget or grid reruns what it touches. Writes REPORT.md, results.csv (every
reported number, with its interval), runs.csv (one row per run), the study's block in the
page that holds it (README.md or a page it links to: docs/results.md) and the README's front
table where it has one (``readme=null`` to skip them). ``--blocks`` rewrites those blocks from
the results.csv already written, without running anything. The body lives in
``seisbert.study.reproduce``.
"""

from __future__ import annotations

import sys

from seisbert.logs import setup_logging
from seisbert.study.reproduce import reproduce

if __name__ == "__main__":
    setup_logging()
    reproduce(sys.argv[1:])
