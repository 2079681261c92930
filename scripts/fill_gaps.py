"""Fill gaps in PSD windows with a pretrained SeisBert model.

    # the metric: log-spectral distance on gaps of 1/5/10/20 s at pre-P, P, S and coda, test split
    python scripts/fill_gaps.py evaluate --checkpoint cache/mlm_psd_regress/<hash>/model.ckpt --out reports/gapfill
    # a real trace with gaps (miniSEED, SAC, ...): writes <out>/<name>_filled.npz and a figure
    python scripts/fill_gaps.py trace data/STA.mseed --checkpoint ... --p-time 2014-06-14T06:50:26

The tokens artifact (tokenizer, centroids, features link, metadata) is the one named by
the checkpoint's ``tokenizer_digest`` under ``--cache-dir``, or ``--tokens``. A
``task.params.target=psd`` model predicts windows directly; a k-means-target model gives
the expected centroid under its softmax; random-projection models cannot fill gaps.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from seisbert.logs import setup_logging
from seisbert.study.config import Gapfill  # the study's gap-filling defaults, stated once

log = logging.getLogger("fill_gaps")


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


def evaluate(args) -> None:
    from seisbert.analysis import gapfill as G

    module, tdir, fcfg, centroids = G.load_model(args.checkpoint, args.cache_dir, args.tokens)
    table, tokens, feats, test = G.evaluate_test(
        module, tdir, fcfg, centroids, args.lengths, args.max_records
    )
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "gapfill.csv", index=False)
    log.info(
        "gap filling, LSD in dB on the gap (test split, %d records):\n%s",
        len(test),
        table.to_string(index=False),
    )
    figure(module, tokens, feats, test[0], centroids, args.out / "filled_gap.png", fcfg, 10)


def figure(module, tokens, feats, row, centroids, path, fcfg, length: int) -> None:
    from seisbert.analysis import gapfill as G

    ids, psd = G.record_batch(tokens, feats, np.array([row]), module.cfg.vocab_size)
    start = round(fcfg["pre_s"] / fcfg["window_s"])  # the gap starts at P
    gap = G.gap_mask(ids, torch.tensor([start]), length, module.cfg.vocab_size)
    model = G.fill_windows(module, ids, psd, gap, centroids)[0, 1:-1].numpy()
    interp = psd.clone()
    spectral = ids < module.cfg.vocab_size
    step_mean = torch.zeros(psd.shape[1], psd.shape[2])
    interp[gap] = G.window_baselines(psd, spectral & ~gap, gap, step_mean, G.time_steps(spectral))[
        "interpolation"
    ]
    G.plot_filled_gap(
        psd[0, 1:-1].numpy(),
        {"model": model, "linear interpolation": interp[0, 1:-1].numpy()},
        (start, start + length),
        path,
        f"{length} s gap at P, test record {row}",
    )


def fill_trace(args) -> None:
    from seisbert.analysis import gapfill as G
    from seisbert.tokenizer import Tokenizer

    if args.trace is None:
        raise ValueError("command trace needs a trace file")
    module, tdir, fcfg, centroids = G.load_model(args.checkpoint, args.cache_dir, args.tokens)
    feats, in_gap = G.trace_windows(args.trace, fcfg, args.p_time, args.channel)
    toks = Tokenizer.load(tdir / "tokenizer").tokenize(feats[None]).astype(np.int64)
    ids, psd = G.record_batch(toks, feats[None], np.array([0]), module.cfg.vocab_size)
    gap = torch.zeros_like(ids, dtype=torch.bool)
    gap[0, 1:-1] = torch.from_numpy(in_gap)
    filled = G.fill_windows(module, ids, psd, gap, centroids)[0, 1:-1].numpy()
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"{args.trace.stem}_filled.npz"
    np.savez(out, features=feats, filled=filled, gap=in_gap)
    runs = np.flatnonzero(in_gap)
    log.info("%s: %d of %d windows in gaps, filled -> %s", args.trace, len(runs), len(in_gap), out)
    if len(runs):
        G.plot_filled_gap(
            feats,
            {"filled": filled},
            (runs[0], runs[-1] + 1),
            args.out / f"{args.trace.stem}_filled.png",
            f"{args.trace.name}: {len(runs)} gap windows",
        )


def main(argv=None) -> None:
    setup_logging(app_loggers=("fill_gaps",))
    args = parse_args(argv)
    with torch.no_grad():
        (evaluate if args.command == "evaluate" else fill_trace)(args)


if __name__ == "__main__":
    main()
