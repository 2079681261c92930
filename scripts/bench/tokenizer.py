"""Benchmark the FAISS k-means tokenizer on synthetic windows with cluster structure.

(a) FAISS vs scikit-learn ``KMeans`` on the same 2 M windows x 20, K=150, the same
    iterations, one init, FAISS with its silent subsample switched off: first from the
    same initial centroids (a seeded sample of the windows: strictly equal work), then
    each from its default seeding. Fit + assign time, and the final inertia of both
    measured by one nearest-centroid pass over all windows.
(b) Paper scale with the default config: 15.3 M windows x 20, K=150, fit on a seeded
    subsample of the training split (``tokenizer.max_fit_windows``), assign all; its
    inertia over all windows against a full-data fit (all windows, same seed and
    iterations), which is timed once too.
(c) (``--part c``) the seedings (FAISS random, k-means++, AFK-MC2; greedy k-means++)
    at equal Lloyd work: final inertia on 1 M windows, per seed.

The body lives in ``seisbert.analysis.tokenizer_bench``.

    python scripts/bench/tokenizer.py                       # both parts (~5 min on 2 cores)
    python scripts/bench/tokenizer.py --part b --n-b 2000000 --no-full-fit
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seisbert.analysis.tokenizer_bench import benchmark_tokenizer, summary_text
from seisbert.logs import setup_logging


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--part",
        choices=["a", "b", "both", "c"],
        default="both",
        help="c: seeding methods compared (not part of both)",
    )
    ap.add_argument("--n-c", type=int, default=1_000_000, help="windows in part (c)")
    ap.add_argument("--n-a", type=int, default=2_000_000, help="windows in part (a)")
    ap.add_argument("--n-b", type=int, default=15_300_000, help="windows in part (b)")
    ap.add_argument("--k", type=int, default=150)
    ap.add_argument("--n-iter", type=int, default=None, help="default: tokenizer.n_iter")
    ap.add_argument(
        "--max-fit-windows",
        type=int,
        nargs="+",
        default=None,
        help="part (b) subsample sizes; default: tokenizer.max_fit_windows",
    )
    ap.add_argument(
        "--seed", type=int, default=0, help="tokenizer seed (part b: the first of --seeds)"
    )
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="part (b) tokenizer seeds; default: --seed",
    )
    ap.add_argument(
        "--data-seed", type=int, default=0, help="seed of the synthetic mixture windows"
    )
    ap.add_argument(
        "--repeat", type=int, default=1, help="part (a): best of this many timings each"
    )
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--no-full-fit", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    return ap.parse_args(argv)


def main(argv=None) -> dict:
    setup_logging()
    args = parse_args(argv)
    results = benchmark_tokenizer(
        part=args.part,
        n_a=args.n_a,
        n_b=args.n_b,
        n_c=args.n_c,
        k=args.k,
        n_iter=args.n_iter,
        max_fit_windows=args.max_fit_windows,
        seed=args.seed,
        seeds=args.seeds,
        data_seed=args.data_seed,
        repeat=args.repeat,
        sklearn=not args.no_sklearn,
        full_fit=not args.no_full_fit,
    )
    print(summary_text(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
