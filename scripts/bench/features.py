"""Featurization throughput: ours vs. SciPy on the same records, as ratios.

    python scripts/bench/features.py [--records 4000] [--paper-records 169808]

(a) ``scipy.signal.welch`` called per 1-s window in a Python loop (the naive way),
(b) ``scipy.signal.periodogram`` once per record on its (T, 100) windows (best plain SciPy),
(c) ours: one matmul per chunk of records (``seisbert.features``), median scaling + log10
    included (the references compute the raw PSD only, so the comparison favours them).
Then the paper's scale (169,808 records of 90 s, in memory) and the fraction of this
machine's memory bandwidth that reading the waveforms once represents.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.signal

from seisbert.features import FeatureConfig, featurize_chunk, psd_operator


def records(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 1, 9000), dtype=np.float32) * 1e-6).cumsum(
        axis=2, dtype=np.float32
    )


def ours(x: np.ndarray, cfg: FeatureConfig) -> float:
    op = psd_operator(cfg, np.dtype(cfg.compute_dtype))
    n, p, npts = len(x), np.full(len(x), 1000), np.full(len(x), 9000)
    t = time.perf_counter()
    for i in range(0, n, cfg.chunk_records):
        j = min(n, i + cfg.chunk_records)
        featurize_chunk(x[i:j], p[i:j], npts[i:j], cfg, op)
    return n / (time.perf_counter() - t)


def welch_loop(x: np.ndarray) -> float:
    t = time.perf_counter()
    for rec in x[:, 0]:
        for w in rec.reshape(90, 100):
            scipy.signal.welch(w, fs=100, window="hann", nperseg=100)
    return len(x) / (time.perf_counter() - t)


def periodogram_per_record(x: np.ndarray) -> float:
    t = time.perf_counter()
    for rec in x[:, 0]:
        scipy.signal.periodogram(rec.reshape(90, 100), fs=100, window="hann", axis=-1)
    return len(x) / (time.perf_counter() - t)


def bandwidth_gb_s(nbytes: int = 2 << 30) -> float:
    """Streaming read bandwidth: sum of a large float32 array (one pass, like featurizing)."""
    a = np.ones(nbytes // 4, dtype=np.float32)
    a.sum()
    t = time.perf_counter()
    a.sum()
    return nbytes / (time.perf_counter() - t) / 1e9


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--records", type=int, default=4000)
    ap.add_argument(
        "--welch-records", type=int, default=40, help="the loop is slow; rate from fewer"
    )
    ap.add_argument(
        "--paper-records", type=int, default=169_808, help="0 skips the paper-scale run"
    )
    args = ap.parse_args(argv)
    x = records(args.records)
    cfg64, cfg32 = FeatureConfig(), FeatureConfig(compute_dtype="float32")
    rates = {
        "(a) welch per window": welch_loop(x[: args.welch_records]),
        "(b) periodogram per record": periodogram_per_record(x),
        "(c) ours, float64 (default)": ours(x, cfg64),
        "(c) ours, float32": ours(x, cfg32),
    }
    ref = rates["(b) periodogram per record"]
    print(f"\nfeaturization, {args.records} records of 90 s at 100 Hz, 2 cores")
    print(f"{'method':32s} {'records/s':>12s} {'vs (a)':>9s} {'vs (b)':>8s}")
    for name, r in rates.items():
        print(f"{name:32s} {r:12,.0f} {r / rates['(a) welch per window']:8.0f}x {r / ref:7.2f}x")
    out = {"rates": rates}
    if args.paper_records:
        big = records(args.paper_records, seed=1)
        r = ours(big, cfg64)
        seconds = args.paper_records / r
        bw = bandwidth_gb_s()
        gbps = big.nbytes / seconds / 1e9
        print(
            f"\npaper scale: {args.paper_records:,} records ({big.nbytes / 1e9:.1f} GB float32) in "
            f"{seconds:.1f} s (target < 15 s); reads {gbps:.2f} GB/s = {gbps / bw:.0%} of the "
            f"{bw:.1f} GB/s streaming bandwidth measured here"
        )
        out.update(paper_seconds=seconds, bandwidth_fraction=gbps / bw)
    return out


if __name__ == "__main__":
    main()
