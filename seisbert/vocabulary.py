"""Vocabulary-quality report: is K a good number of tokens, and what do tokens know?

Choosing the vocabulary size is a measurement. Cluster geometry: inertia,
Davies-Bouldin and Calinski-Harabasz (scikit-learn, on a seeded subsample). Usage:
empty and tiny clusters, usage entropy and perplexity. Information about the source:
cluster purity and PNMI, the phone-normalised mutual information HuBERT reports
(Hsu et al. 2021, Table 4: ``I(label; token) / H(label)``), against event class and
against phase-time bins (pre-event / P / S / coda), the seismic stand-in for phones, placed
on the features config's window grid. Computed on the training records only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seisbert.config import check_range
from seisbert.features import FeatureConfig

log = logging.getLogger(__name__)

PHASES = ("pre-event", "P", "S", "coda")


@dataclass
class ReportConfig:
    """The report's own knobs. Phase bins are durations after the P pick in seconds; where
    P sits and how long a window is come from the features config (:func:`phase_layout`)."""

    sample_windows: int = 20_000  # Davies-Bouldin / Calinski-Harabasz run on this many windows
    tiny_fraction: float = 0.001  # a token used by fewer than this fraction of windows is tiny
    seed: int = 0
    p_bin_s: float = 5.0  # P bin: the first p_bin_s after the P pick (cut short by S)
    s_bin_s: float = 15.0  # S bin length from the S pick, when metadata has trace_s_arrival_sample
    s_start_s: float = 5.0  # else a fixed S bin from s_start_s to s_end_s after P
    s_end_s: float = 20.0

    def __post_init__(self):
        check_range("tokenizer.report.sample_windows", self.sample_windows, 2)
        check_range("tokenizer.report.tiny_fraction", self.tiny_fraction, 0.0, 1.0)
        check_range("tokenizer.report.p_bin_s", self.p_bin_s, 0.0)
        check_range("tokenizer.report.s_bin_s", self.s_bin_s, 0.0)
        check_range("tokenizer.report.s_start_s", self.s_start_s, 0.0)
        check_range("tokenizer.report.s_end_s", self.s_end_s, self.s_start_s)


@dataclass(frozen=True)
class PhaseLayout:
    """Phase bins in window indices, for one features config (see :func:`phase_layout`)."""

    n_windows: int  # T
    p_window: int  # the window holding the P pick
    p_windows: int  # P bin: p_window .. p_window + p_windows - 1
    s_windows: int  # S bin length from an S pick
    s_start_window: int  # fixed S bin without an S pick: s_start_window .. s_end_window - 1
    s_end_window: int
    pre_s: float  # the window grid: window i starts i * window_s - pre_s after P
    window_s: float
    sampling_rate_hz: float  # S pick samples to seconds, unless metadata has trace_sampling_rate_hz


def phase_layout(
    cfg: ReportConfig | None = None, features: FeatureConfig | None = None
) -> PhaseLayout:
    """Where the phase bins fall on the window grid of ``features`` (default FeatureConfig()):
    P in window ``floor(pre_s / window_s)``; a bin starts in the window holding its start time
    and lasts the windows that cover its duration (at least one)."""
    cfg = cfg if cfg is not None else ReportConfig()
    features = features if features is not None else FeatureConfig()
    w = features.window_s

    def covering(seconds: float) -> int:  # windows that cover a duration (at least one)
        return max(1, int(np.ceil(seconds / w - 1e-9)))

    p_window = int(np.floor(features.pre_s / w + 1e-9))
    s_start = p_window + max(1, int(np.floor(cfg.s_start_s / w + 1e-9)))
    s_end = max(p_window + covering(cfg.s_end_s), s_start + 1)
    return PhaseLayout(
        n_windows=features.n_windows,
        p_window=p_window,
        p_windows=covering(cfg.p_bin_s),
        s_windows=covering(cfg.s_bin_s),
        s_start_window=s_start,
        s_end_window=s_end,
        pre_s=features.pre_s,
        window_s=w,
        sampling_rate_hz=features.sampling_rate_hz,
    )


def usage_stats(tokens: np.ndarray, vocab_size: int, tiny_fraction: float = 0.001) -> dict:
    """How evenly tokens are used: entropy (bits), perplexity (2**entropy, the effective
    number of tokens), fractions of empty and tiny (non-empty, < ``tiny_fraction`` of
    windows) tokens, and the fraction of windows in the most used token."""
    counts = np.bincount(tokens.ravel(), minlength=vocab_size)  # (K,)
    p = counts / counts.sum()
    nz = p[p > 0]
    entropy = float(-(nz * np.log2(nz)).sum())
    return {
        "entropy_bits": entropy,
        "perplexity": float(2**entropy),
        "max_entropy_bits": float(np.log2(vocab_size)),
        "n_used": int((counts > 0).sum()),
        "empty_fraction": float((counts == 0).mean()),
        "tiny_fraction": float(((counts > 0) & (p < tiny_fraction)).mean()),
        "largest_token_fraction": float(p.max()),
    }


def _joint(tokens: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Joint counts (K, L) of token ids and non-negative integer labels of the same shape."""
    tokens, labels = tokens.ravel().astype(np.int64), labels.ravel().astype(np.int64)
    n_labels = int(labels.max()) + 1
    k = int(tokens.max()) + 1
    return np.bincount(tokens * n_labels + labels, minlength=k * n_labels).reshape(k, n_labels)


def purity(tokens: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of windows whose label is their token's majority label."""
    joint = _joint(tokens, labels)
    return float(joint.max(axis=1).sum() / joint.sum())


def pnmi(tokens: np.ndarray, labels: np.ndarray) -> float:
    """I(label; token) / H(label): 1 when tokens determine the label, 0 when independent."""
    pxy = _joint(tokens, labels) / tokens.size  # (K, L)
    px, py = pxy.sum(axis=1, keepdims=True), pxy.sum(axis=0, keepdims=True)
    nz = pxy > 0
    mi = float((pxy[nz] * np.log(pxy[nz] / (px @ py)[nz])).sum())
    py = py[py > 0]
    h = float(-(py * np.log(py)).sum())
    return mi / h if h > 1e-12 else float("nan")  # one label only: nothing to explain


def phase_bins(
    metadata: pd.DataFrame,
    n_windows: int,
    cfg: ReportConfig | None = None,
    features: FeatureConfig | None = None,
) -> np.ndarray:
    """Phase-time bin of every window (N, T) int8, indices into ``PHASES``, on the window
    grid of ``features`` (default FeatureConfig(); its T must be ``n_windows``).

    pre-event before the P window; P for ``p_bin_s`` (cut short by S); S from the S pick
    (``trace_s_arrival_sample`` when present) for ``s_bin_s``, else the fixed bin
    ``s_start_s .. s_end_s`` after P; coda is the rest, P coda included.
    """
    lay = phase_layout(cfg, features)
    if n_windows != lay.n_windows:
        raise ValueError(
            f"the tokens have T={n_windows} windows but the features config gives "
            f"T={lay.n_windows} (pre_s={lay.pre_s}, window_s={lay.window_s}); pass the "
            "features config the tokens were made with"
        )
    n = len(metadata)
    s_start = np.full(n, lay.s_start_window, dtype=np.int64)
    s_end = np.full(n, lay.s_end_window, dtype=np.int64)
    if "trace_s_arrival_sample" in metadata.columns:
        s = pd.to_numeric(metadata["trace_s_arrival_sample"], errors="coerce").to_numpy(float)
        p = metadata["trace_p_arrival_sample"].to_numpy(float)
        known = np.isfinite(s)
        rate = (
            metadata["trace_sampling_rate_hz"].to_numpy(float)
            if "trace_sampling_rate_hz" in metadata.columns
            else lay.sampling_rate_hz
        )
        s_win = np.floor((lay.pre_s + (s - p) / rate) / lay.window_s)  # window holding the S pick
        s_start[known] = np.maximum(s_win[known], lay.p_window + 1)
        s_end[known] = s_start[known] + lay.s_windows
    t = np.arange(n_windows)[None, :]  # (1, T)
    p_end = np.minimum(lay.p_window + lay.p_windows, s_start)[:, None]
    in_s = (t >= s_start[:, None]) & (t < s_end[:, None])
    return np.select([t < lay.p_window, t < p_end, in_s], [0, 1, 2], default=3).astype(np.int8)


def mean_squared_distance(
    features: np.ndarray,
    tokens: np.ndarray,
    centroids: np.ndarray,
    records: np.ndarray | None = None,
    chunk_records: int = 4096,
) -> float:
    """Inertia per window: mean of |window - centroid(token)|^2 over (N, T, F) features, on
    the sorted row indices ``records`` (default all)."""
    records = np.arange(len(tokens)) if records is None else records
    total = 0.0
    for lo in range(0, len(records), chunk_records):  # bounded memory on a memory map
        r = records[lo : lo + chunk_records]
        x = np.asarray(features[r], dtype=np.float32)  # (n, T, F)
        total += float(((x - centroids[tokens[r]]) ** 2).sum(dtype=np.float64))
    return total / (len(records) * tokens.shape[1])


def cluster_indices(
    features: np.ndarray,
    tokens: np.ndarray,
    sample: int,
    seed: int,
    records: np.ndarray | None = None,
) -> dict:
    """Davies-Bouldin (lower is better) and Calinski-Harabasz (higher) on a seeded subsample
    of the windows of ``records`` (sorted row indices, default all)."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    records = np.arange(len(tokens)) if records is None else records
    t = tokens.shape[1]
    n = len(records) * t
    flat = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    r, w = records[flat // t], flat % t  # record and window of each sampled window
    x = np.asarray(features[r, w], dtype=np.float64)  # (sample, F)
    labels = np.asarray(tokens[r, w])
    if len(np.unique(labels)) < 2:
        return {"davies_bouldin": float("nan"), "calinski_harabasz": float("nan")}
    return {
        "davies_bouldin": float(davies_bouldin_score(x, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(x, labels)),
    }


def vocabulary_report(
    features: np.ndarray,
    tokens: np.ndarray,
    centroids: np.ndarray,
    metadata: pd.DataFrame,
    cfg: ReportConfig | None = None,
    feature_cfg: FeatureConfig | None = None,
) -> dict:
    """Quality of a vocabulary over the training records: features (N, T, F), tokens (N, T),
    centroids (K, F), metadata with ``label``, ``split`` and ``trace_p_arrival_sample``;
    ``feature_cfg`` is the features config the windows were cut with. Flat dict.

    Only ``split == "train"`` rows count (all rows when metadata has no split), so a choice of
    K made on this report never reads a dev or test label; class statistics skip unlabelled
    rows (``label < 0``). Inertia needs centroids in the space of ``features``; for the
    waveform methods pass the PSD features anyway (indices then compare methods in one
    space) and inertia is NaN.
    """
    cfg = cfg if cfg is not None else ReportConfig()
    has_split = "split" in metadata.columns
    rows = (
        np.flatnonzero(metadata["split"].to_numpy() == "train")
        if has_split
        else np.arange(len(tokens))
    )
    if len(rows) == 0:
        raise ValueError(
            "the vocabulary report has no training records (metadata split == 'train')"
        )
    all_tokens, tokens, metadata = (
        tokens,
        np.asarray(tokens[rows]),
        metadata.iloc[rows].reset_index(drop=True),
    )
    n, t = tokens.shape
    k = len(centroids)
    phases = phase_bins(metadata, t, cfg, feature_cfg)
    label = metadata["label"].to_numpy(np.int64)
    labelled = label >= 0
    labels = np.broadcast_to(
        label[labelled, None], (int(labelled.sum()), t)
    )  # record label per window
    same_space = centroids.shape[1] == features.shape[2]
    report = {
        "vocab_size": k,
        "n_records": n,
        "n_windows": int(tokens.size),
        "rows": "train" if has_split else "all",
        "inertia": mean_squared_distance(features, all_tokens, centroids, rows)
        if same_space
        else float("nan"),
    }
    report.update(cluster_indices(features, all_tokens, cfg.sample_windows, cfg.seed, rows))
    report.update(usage_stats(tokens, k, cfg.tiny_fraction))
    has_labels = bool(labelled.any())
    report.update(
        {
            "class_purity": purity(tokens[labelled], labels) if has_labels else float("nan"),
            "class_pnmi": pnmi(tokens[labelled], labels) if has_labels else float("nan"),
            "phase_purity": purity(tokens, phases),
            "phase_pnmi": pnmi(tokens, phases),
            "phase_fractions": {name: float((phases == i).mean()) for i, name in enumerate(PHASES)},
        }
    )
    log.info(
        "vocabulary K=%d on %d training records: inertia %.4g, perplexity %.1f, "
        "class PNMI %.3f, phase PNMI %.3f",
        k,
        n,
        report["inertia"],
        report["perplexity"],
        report["class_pnmi"],
        report["phase_pnmi"],
    )
    return report


def write_report(report: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    return path
