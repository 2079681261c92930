"""Draw the token views (occurrence heatmap, kinds, UMAP map, centroid spectra) as PNGs.

    python scripts/plot_tokens.py ARTIFACT_DIR --out reports/tokens
    python scripts/plot_tokens.py --demo --out reports/tokens_demo

ARTIFACT_DIR holds ``features.npy`` (N, T, F), ``tokens.npy`` (N, T), ``centroids.npy``
(K, F) and ``metadata.parquet``. ``--demo`` fits a tokenizer on stand-in features instead.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from seisbert import vocabulary
from seisbert.analysis import token_views
from seisbert.config import build
from seisbert.features import FeatureConfig
from seisbert.tokenizer import TokenizerConfig, fit_tokenizer, standin_features

log = logging.getLogger("seisbert.plot_tokens")


def load_artifact(folder: Path):
    """A tokens artifact's arrays and metadata, and the features config its windows were cut
    with (from its ``artifact.json``), so P and the window length are read, not assumed."""
    marker = folder / "artifact.json"
    if marker.exists():
        fcfg = build(json.loads(marker.read_text())["config"]["features"], "features")
    else:  # a folder put together by hand: the window grid is checked against the tokens' T
        log.warning("%s has no artifact.json: assuming the default features config", folder)
        fcfg = FeatureConfig()
    return (
        np.load(folder / "features.npy", mmap_mode="r"),
        np.load(folder / "tokens.npy"),
        np.load(folder / "centroids.npy"),
        pd.read_parquet(folder / "metadata.parquet"),
        fcfg,
    )


def demo_artifact(n_records: int, vocab_size: int, seed: int):
    fcfg = FeatureConfig()
    features, metadata = standin_features(n_records, seed=seed, features=fcfg)
    tokenizer, tokens = fit_tokenizer(
        features, metadata, TokenizerConfig(vocab_size=vocab_size, seed=seed)
    )
    return features, tokens, tokenizer.centroids, metadata, fcfg


def median_s_window(metadata: pd.DataFrame, n_windows: int, fcfg: FeatureConfig) -> int:
    """Median S window over records (from the phase bins), the S line and kind boundary."""
    cfg = vocabulary.ReportConfig()
    bins = vocabulary.phase_bins(metadata, n_windows, cfg, fcfg)  # (N, T)
    has_s = (bins == 2).any(axis=1)
    first_s = np.argmax(bins == 2, axis=1)[has_s]
    return (
        int(np.median(first_s))
        if len(first_s)
        else vocabulary.phase_layout(cfg, fcfg).s_start_window
    )


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "artifact", nargs="?", type=Path, help="folder with features/tokens/centroids/metadata"
    )
    ap.add_argument("--demo", action="store_true", help="use stand-in features and a fresh fit")
    ap.add_argument("--demo-records", type=int, default=1500)
    ap.add_argument("--vocab-size", type=int, default=150, help="K for --demo")
    ap.add_argument("--out", type=Path, default=Path("reports/tokens"))
    ap.add_argument("--umap-sample", type=int, default=5000, help="PSD windows in the UMAP map")
    ap.add_argument("--n-tokens", type=int, default=20, help="tokens in the small multiples")
    ap.add_argument("--n-kinds", type=int, default=7, help="kinds the tokens are grouped into")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-umap", action="store_true")
    args = ap.parse_args(argv)
    if (args.artifact is None) == (not args.demo):
        ap.error("give an ARTIFACT_DIR or --demo (not both)")
    return args


def main(argv=None) -> list[Path]:
    args = parse_args(argv)
    features, tokens, centroids, metadata, fcfg = (
        demo_artifact(args.demo_records, args.vocab_size, args.seed)
        if args.demo
        else load_artifact(args.artifact)
    )
    p_window = vocabulary.phase_layout(features=fcfg).p_window
    layout = token_views.token_layout(
        tokens,
        len(centroids),
        args.n_kinds,
        p_window,
        median_s_window(metadata, tokens.shape[1], fcfg),
        fcfg.window_s,
    )
    out = [
        token_views.plot_occurrence(layout, args.out / "token_occurrence.png"),
        token_views.plot_token_kinds(layout, args.out / "token_kinds.png", args.n_tokens),
        token_views.plot_centroid_spectra(centroids, args.out / "centroid_spectra.png", layout),
    ]
    if not args.skip_umap:
        out.append(
            token_views.plot_umap_map(
                features, tokens, layout, args.out / "token_umap.png", args.umap_sample, args.seed
            )
        )
    return out
