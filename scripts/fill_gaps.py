"""Fill gaps in PSD windows with a pretrained SeisBert model.

    # the metric: log-spectral distance on gaps of 1/5/10/20 s at pre-P, P, S and coda, test split
    python scripts/fill_gaps.py evaluate --checkpoint cache/mlm_psd_regress/<hash>/model.ckpt \
        --out reports/gapfill
    # a real trace with gaps (miniSEED, SAC, ...): writes <out>/<name>_filled.npz and a figure
    python scripts/fill_gaps.py trace data/STA.mseed --checkpoint ... --p-time 2014-06-14T06:50:26

The tokens artifact (tokenizer, centroids, features link, metadata) is the one named by
the checkpoint's ``tokenizer_digest`` under ``--cache-dir``, or ``--tokens``. A
``task.params.target=psd`` model predicts windows directly; a k-means-target model gives
the expected centroid under its softmax; random-projection models cannot fill gaps. The body
lives in ``seisbert.analysis.gapfill_commands``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seisbert.analysis.gapfill_commands import evaluate_checkpoint, fill_trace
from seisbert.logs import setup_logging
from seisbert.study.config import Gapfill  # the study's gap-filling defaults, stated once


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("command", choices=("evaluate", "trace"))
    ap.add_argument("trace", nargs="?", type=Path, help="trace file (command trace)")
    ap.add_argument("--checkpoint", type=Path, required=True, help="a pretraining model.ckpt")
    ap.add_argument("--cache-dir", type=Path, default=Path("cache"))
    ap.add_argument(
        "--tokens", type=Path, help="tokens artifact folder (default: the checkpoint's)"
    )
    ap.add_argument("--out", type=Path, default=Path("reports/gapfill"))
    ap.add_argument(
        "--lengths", type=int, nargs="+", default=Gapfill().lengths, help="gap lengths in windows"
    )
    ap.add_argument(
        "--max-records",
        type=int,
        default=Gapfill().max_records,
        help="test records scored (evaluate)",
    )
    ap.add_argument(
        "--p-time", help="P arrival (UTC, ISO 8601) of the trace; default start + pre_s"
    )
    ap.add_argument("--channel", help="channel code when the file holds several")
    return ap.parse_args(argv)


def main(argv=None) -> None:
    setup_logging()
    args = parse_args(argv)
    if args.command == "evaluate":
        evaluate_checkpoint(
            args.checkpoint, args.cache_dir, args.out, args.lengths, args.max_records, args.tokens
        )
    else:
        fill_trace(
            args.trace,
            args.checkpoint,
            args.cache_dir,
            args.out,
            args.tokens,
            args.p_time,
            args.channel,
        )


if __name__ == "__main__":
    main()
