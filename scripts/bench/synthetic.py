"""Benchmark the embedded synthetic source: generation speed and how separable its classes are.

    python scripts/bench/synthetic.py                     # defaults: speed + logistic regressions
    python scripts/bench/synthetic.py --hgb               # + HistGradientBoosting on the 90x20 grid
    python scripts/bench/synthetic.py --set p_single_shot=0.08 dlog_ps_blast=0.4 jitter_ms=5

Separability follows synthetic.md section 8: trace-level accuracy, 4-fold CV grouped by
event, on 1-s log-PSDs (1-20 Hz, 1 Hz bins), against the catalogue / the true label.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from seisbert.data.synthetic import SyntheticSource


def log_psd_windows(waves: np.ndarray, chunk: int = 500) -> np.ndarray:
    """``(N, 9000)`` -> ``(N, 90, 20)`` log10 power of 1-s Hann windows at 1..20 Hz."""
    out = np.empty((len(waves), 90, 20), np.float32)
    taper = np.hanning(100).astype(np.float32)
    for i in range(0, len(waves), chunk):
        seg = waves[i : i + chunk].reshape(-1, 90, 100) * taper  # (B, T, 100)
        power = np.abs(np.fft.rfft(seg, axis=-1)[..., 1:21]) ** 2
        out[i : i + chunk] = np.log10(power + 1e-30)
    return out


def cv_accuracy(model, x: np.ndarray, y: np.ndarray, y_true: np.ndarray, groups: np.ndarray):
    """Mean 4-fold event-grouped accuracy against the catalogue and the true labels."""
    acc, acc_true = [], []
    for train, test in GroupKFold(n_splits=4).split(x, y, groups):
        pred = model.fit(x[train], y[train]).predict(x[test])
        acc.append(np.mean(pred == y[test]))
        acc_true.append(np.mean(pred == y_true[test]))
    return 100 * np.mean(acc), 100 * np.mean(acc_true)


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, value = item.split("=", 1)
        out[key] = type(getattr(SyntheticSource, key, 0.0))(value) if key != "seed" else int(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", nargs="*", default=[], help="SyntheticSource overrides key=value")
    parser.add_argument(
        "--hgb", action="store_true", help="also fit HistGradientBoosting on the full grid"
    )
    args = parser.parse_args()
    source = SyntheticSource(**parse_overrides(args.set))
    start = time.perf_counter()
    records = source.load(progress=True)
    wall = time.perf_counter() - start
    meta = records.metadata
    print(
        f"generated {len(meta)} records of {meta['event_id'].nunique()} events in {wall:.1f} s "
        f"({len(meta) / wall:.0f} records/s); blast traces {100 * meta['label_true'].mean():.1f}%; "
        f"SNR p10/50/90 {np.percentile(meta['trace_snr_db'], [10, 50, 90]).round(1).tolist()} dB"
    )
    psd = log_psd_windows(records.waveforms[:, 0])  # (N, 90, 20); window 10 starts at the P pick
    y, y_true, groups = (
        meta["label"].to_numpy(),
        meta["label_true"].to_numpy(),
        meta["event_id"].to_numpy(),
    )
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    features = {
        "logreg, mean log-PSD P+0-30 s": psd[:, 10:40].mean(axis=1),
        "logreg, 3 windows P+0-5/5-30/30-80 s": np.concatenate(
            [psd[:, 10:15].mean(1), psd[:, 15:40].mean(1), psd[:, 40:90].mean(1)], axis=1
        ),
    }
    models = [(name, logreg, x) for name, x in features.items()]
    if args.hgb:
        hgb = HistGradientBoostingClassifier(max_iter=200, random_state=0)
        models.append(("HistGBM, full 90x20 grid", hgb, psd.reshape(len(psd), -1)))
    print(f"{'model (4-fold event-grouped accuracy, %)':42s} catalogue  true", flush=True)
    for name, model, x in models:
        acc, acc_true = cv_accuracy(model, x, y, y_true, groups)
        print(f"{name:42s} {acc:9.1f}  {acc_true:4.1f}", flush=True)


if __name__ == "__main__":
    main()
