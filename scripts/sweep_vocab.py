"""Sweep the vocabulary size K and plot the vocabulary-quality metrics against it.

    python scripts/sweep_vocab.py --demo --out reports/vocab_sweep_demo
    python scripts/sweep_vocab.py cache/features/<hash> --out reports/vocab_sweep
    python scripts/sweep_vocab.py cache/features/<hash> --method kmeans_waveform \
        --records cache/records/<hash> --sizes 150 --waveform-normalize none

FEATURES_DIR holds ``features.npy`` (N, T, F) and ``metadata.parquet`` (a features
artifact). The waveform methods also read raw windows from a records artifact
(``waveforms.npy`` (N, C, S) and the features metadata's ``record_index``); their
report is computed in PSD space, so inertia is NaN there. Writes ``sweep.json``,
``sweep.csv`` and ``sweep.png`` (metrics vs K) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from seisbert.figures import pyplot
from seisbert.logs import setup_logging
from seisbert.tokenizer import TokenizerConfig, fit_tokenizer, standin_features
from seisbert.vocabulary import ReportConfig, vocabulary_report

log = logging.getLogger("sweep_vocab")

PANELS = [  # (title, y label, [(metric key, legend label)])
    ("Inertia", "mean squared distance", [("inertia", None)]),
    ("Davies-Bouldin (lower is better)", "index", [("davies_bouldin", None)]),
    ("Calinski-Harabasz (higher is better)", "index", [("calinski_harabasz", None)]),
    (
        "Token usage",
        "bits",
        [("entropy_bits", "usage entropy"), ("max_entropy_bits", "log2 K (uniform)")],
    ),
    (
        "Unused and rare tokens",
        "fraction",
        [
            ("empty_fraction", "empty tokens"),
            ("tiny_fraction", "tiny tokens"),
            ("largest_token_fraction", "windows in the largest token"),
        ],
    ),
    (
        "What tokens know",
        "PNMI / purity",
        [
            ("phase_pnmi", "PNMI phase bin"),
            ("class_pnmi", "PNMI event class"),
            ("phase_purity", "purity phase bin"),
            ("class_purity", "purity event class"),
        ],
    ),
]


def raw_windows(
    records_dir: Path,
    metadata: pd.DataFrame,
    pre_windows: int = 10,
    n_windows: int = 90,
    window_samples: int = 100,
) -> np.ndarray:
    """Raw vertical windows (N, T, S) of the featurized records, from P - pre to the end."""
    waveforms = np.load(records_dir / "waveforms.npy", mmap_mode="r")  # (R, C, S)
    rows = metadata["record_index"].to_numpy()
    start = metadata["trace_p_arrival_sample"].to_numpy() - pre_windows * window_samples
    span = np.arange(n_windows * window_samples)[None, :]
    seg = np.take_along_axis(np.asarray(waveforms[rows, 0]), start[:, None] + span, axis=1)
    return seg.reshape(len(rows), n_windows, window_samples).astype(np.float32)


def standin_waveforms(n_records: int, seed: int) -> np.ndarray:
    """Stand-in raw windows (N, 90, 100): noise, then a decaying wave train at 10 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(9000) / 100.0 - 10.0
    amp = 10 ** rng.uniform(0, 3, (n_records, 1))
    env = 1 + amp * np.where(t >= 0, np.exp(-np.maximum(t, 0) / 8.0), 0.0)[None]
    return (
        (rng.standard_normal((n_records, t.size)) * env)
        .astype(np.float32)
        .reshape(n_records, 90, 100)
    )


def load_inputs(args) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(tokenizer input, PSD features for the report, metadata)."""
    if args.demo:
        features, metadata = standin_features(args.demo_records, seed=args.seed)
        if args.method == "kmeans_psd":
            return features, features, metadata
        return standin_waveforms(args.demo_records, args.seed), features, metadata
    features = np.load(args.features_dir / "features.npy", mmap_mode="r")
    metadata = pd.read_parquet(args.features_dir / "metadata.parquet")
    if args.method == "kmeans_psd":
        return features, features, metadata
    if args.records is None:
        raise SystemExit(f"--method {args.method} needs --records (a records artifact folder)")
    return raw_windows(args.records, metadata), features, metadata


def sweep(
    inputs, features, metadata, cfg: TokenizerConfig, sizes: list[int], report_cfg: ReportConfig
) -> list[dict]:
    rows = []
    for k in sizes:
        t0 = time.perf_counter()
        tok, tokens = fit_tokenizer(inputs, metadata, replace(cfg, vocab_size=k))
        seconds = time.perf_counter() - t0
        row = vocabulary_report(features, tokens, tok.centroids, metadata, report_cfg)
        row.update({"method": cfg.method, "fit_inertia": tok.inertia, "fit_assign_s": seconds})
        rows.append(row)
        log.info("K=%d done in %.1f s", k, seconds)
    return rows


def plot_sweep(rows: list[dict], path: Path, title: str) -> Path:
    plt = pyplot()

    ks = [r["vocab_size"] for r in rows]
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5), layout="constrained")
    for ax, (name, ylabel, series) in zip(axes.flat, PANELS):
        for key, label in series:
            ax.plot(ks, [r[key] for r in rows], "o-", ms=4, label=label)
        ax.set(title=name, xlabel="vocabulary size K", ylabel=ylabel, xscale="log")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.grid(alpha=0.3)
        if series[0][1] is not None:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("features_dir", nargs="?", type=Path, help="features artifact folder")
    ap.add_argument("--demo", action="store_true", help="stand-in features instead of an artifact")
    ap.add_argument("--demo-records", type=int, default=600)
    ap.add_argument(
        "--method", default="kmeans_psd", choices=["kmeans_psd", "umap_waveform", "kmeans_waveform"]
    )
    ap.add_argument(
        "--records", type=Path, default=None, help="records artifact (waveform methods)"
    )
    ap.add_argument("--waveform-normalize", default="record", choices=["none", "record", "window"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64, 100, 150])
    ap.add_argument(
        "--max-fit-windows", type=int, default=None, help="default: tokenizer.max_fit_windows"
    )
    ap.add_argument("--n-iter", type=int, default=None, help="default: tokenizer.n_iter")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("reports/vocab_sweep"))
    args = ap.parse_args(argv)
    if (args.features_dir is None) == (not args.demo):
        ap.error("give a FEATURES_DIR or --demo (not both)")
    return args


def main(argv=None) -> list[dict]:
    setup_logging(app_loggers=[log.name])
    args = parse_args(argv)
    inputs, features, metadata = load_inputs(args)
    cfg = TokenizerConfig(
        method=args.method, seed=args.seed, waveform_normalize=args.waveform_normalize
    )
    cfg = replace(
        cfg,
        n_iter=args.n_iter or cfg.n_iter,
        max_fit_windows=args.max_fit_windows or cfg.max_fit_windows,
    )
    rows = sweep(inputs, features, metadata, cfg, args.sizes, ReportConfig(seed=args.seed))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep.json").write_text(json.dumps(rows, indent=2))
    table = pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, dict)} for r in rows])
    table.to_csv(args.out / "sweep.csv", index=False)
    source = "stand-in features" if args.demo else str(args.features_dir)
    plot_sweep(
        rows,
        args.out / "sweep.png",
        f"Vocabulary quality vs K ({args.method}, {source}, {len(metadata):,} records)",
    )
    cols = [
        "vocab_size",
        "inertia",
        "davies_bouldin",
        "calinski_harabasz",
        "perplexity",
        "largest_token_fraction",
        "class_pnmi",
        "phase_pnmi",
        "fit_assign_s",
    ]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return rows


if __name__ == "__main__":
    main()
