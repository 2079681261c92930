"""Vocabulary-quality report: is K a good number of tokens, and what do tokens know?

Choosing the vocabulary size is a measurement. Cluster geometry: inertia,
Davies-Bouldin and Calinski-Harabasz (scikit-learn, on a seeded subsample). Usage:
empty and tiny clusters, usage entropy and perplexity. Information about the source:
cluster purity and PNMI, the phone-normalised mutual information HuBERT reports
(Hsu et al. 2021, Table 4: ``I(label; token) / H(label)``), against event class and
against phase-time bins (pre-event / P / S / coda), the seismic stand-in for phones.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seisbert.config import check_range

log = logging.getLogger(__name__)

PHASES = ("pre-event", "P", "S", "coda")


@dataclass
class ReportConfig:
    sample_windows: int = 20_000  # Davies-Bouldin / Calinski-Harabasz run on this many windows
    tiny_fraction: float = 0.001  # a token used by fewer than this fraction of windows is tiny
    seed: int = 0
    p_window: int = 10  # index of the window holding the P pick (pre_s / window_s)
    p_windows: int = 5  # P bin: windows p_window .. p_window + p_windows - 1 (cut short by S)
    s_windows: int = 15  # S bin length when metadata has trace_s_arrival_sample
    s_start_window: int = 15  # fixed S bin when it has not: s_start_window .. s_end_window - 1
    s_end_window: int = 30
    window_s: float = 1.0
    sampling_rate_hz: float = 100.0  # S pick samples to seconds, unless metadata has trace_sampling_rate_hz

    def __post_init__(self):
        check_range("tokenizer.report.sample_windows", self.sample_windows, 2)
        check_range("tokenizer.report.tiny_fraction", self.tiny_fraction, 0.0, 1.0)
        check_range("tokenizer.report.p_window", self.p_window, 0)
        check_range("tokenizer.report.p_windows", self.p_windows, 1)
        check_range("tokenizer.report.s_windows", self.s_windows, 1)
        check_range("tokenizer.report.s_start_window", self.s_start_window, self.p_window + 1)
        check_range("tokenizer.report.s_end_window", self.s_end_window, self.s_start_window + 1)


def usage_stats(tokens: np.ndarray, vocab_size: int, tiny_fraction: float = 0.001) -> dict:
    """How evenly tokens are used: entropy (bits), perplexity (2**entropy, the effective
    number of tokens), fractions of empty and tiny (non-empty, < ``tiny_fraction`` of
    windows) tokens, and the fraction of windows in the most used token."""
    counts = np.bincount(tokens.ravel(), minlength=vocab_size)  # (K,)
    p = counts / counts.sum()
    nz = p[p > 0]
    entropy = float(-(nz * np.log2(nz)).sum())
    return {"entropy_bits": entropy, "perplexity": float(2 ** entropy),
            "max_entropy_bits": float(np.log2(vocab_size)), "n_used": int((counts > 0).sum()),
            "empty_fraction": float((counts == 0).mean()),
            "tiny_fraction": float(((counts > 0) & (p < tiny_fraction)).mean()),
            "largest_token_fraction": float(p.max())}


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


def phase_bins(metadata: pd.DataFrame, n_windows: int, cfg: ReportConfig) -> np.ndarray:
    """Phase-time bin of every window (N, T) int8, indices into ``PHASES``.

    pre-event before the P window; P for ``p_windows`` windows (cut short by S); S from the
    S pick (``trace_s_arrival_sample`` when present) for ``s_windows`` windows, else the
    fixed bin ``s_start_window .. s_end_window - 1``; coda is the rest, P coda included.
    """
    n = len(metadata)
    s_start = np.full(n, cfg.s_start_window, dtype=np.int64)
    s_end = np.full(n, cfg.s_end_window, dtype=np.int64)
    if "trace_s_arrival_sample" in metadata.columns:
        s = pd.to_numeric(metadata["trace_s_arrival_sample"], errors="coerce").to_numpy(float)
        p = metadata["trace_p_arrival_sample"].to_numpy(float)
        known = np.isfinite(s)
        rate = (metadata["trace_sampling_rate_hz"].to_numpy(float) if "trace_sampling_rate_hz" in metadata.columns
                else cfg.sampling_rate_hz)
        s_win = cfg.p_window + np.floor((s - p) / (rate * cfg.window_s))
        s_start[known] = np.maximum(s_win[known], cfg.p_window + 1)
        s_end[known] = s_start[known] + cfg.s_windows
    t = np.arange(n_windows)[None, :]  # (1, T)
    p_end = np.minimum(cfg.p_window + cfg.p_windows, s_start)[:, None]
    in_s = (t >= s_start[:, None]) & (t < s_end[:, None])
    return np.select([t < cfg.p_window, t < p_end, in_s], [0, 1, 2], default=3).astype(np.int8)


def mean_squared_distance(features: np.ndarray, tokens: np.ndarray, centroids: np.ndarray,
                          chunk_records: int = 4096) -> float:
    """Inertia per window: mean of |window - centroid(token)|^2 over (N, T, F) features."""
    total = 0.0
    for lo in range(0, len(features), chunk_records):  # bounded memory on a memory map
        x = np.asarray(features[lo:lo + chunk_records], dtype=np.float32)  # (n, T, F)
        total += float(((x - centroids[tokens[lo:lo + chunk_records]]) ** 2).sum(dtype=np.float64))
    return total / tokens.size


def cluster_indices(features: np.ndarray, tokens: np.ndarray, sample: int, seed: int) -> dict:
    """Davies-Bouldin (lower is better) and Calinski-Harabasz (higher) on a seeded subsample."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    flat_tokens = tokens.reshape(-1)
    n = flat_tokens.size
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    x = np.asarray(features.reshape(n, -1)[rows], dtype=np.float64)
    labels = flat_tokens[rows]
    if len(np.unique(labels)) < 2:
        return {"davies_bouldin": float("nan"), "calinski_harabasz": float("nan")}
    return {"davies_bouldin": float(davies_bouldin_score(x, labels)),
            "calinski_harabasz": float(calinski_harabasz_score(x, labels))}


def vocabulary_report(features: np.ndarray, tokens: np.ndarray, centroids: np.ndarray,
                      metadata: pd.DataFrame, cfg: ReportConfig | None = None) -> dict:
    """Quality of a vocabulary over all windows: features (N, T, F), tokens (N, T),
    centroids (K, F), metadata with ``label`` and ``trace_p_arrival_sample``. Flat dict.

    Inertia needs centroids in the space of ``features``; for the waveform methods pass
    the PSD features anyway (indices then compare methods in one space) and inertia is NaN.
    """
    cfg = cfg if cfg is not None else ReportConfig()
    n, t = tokens.shape
    k = len(centroids)
    labels = np.broadcast_to(metadata["label"].to_numpy(np.int64)[:, None], (n, t))  # record label per window
    phases = phase_bins(metadata, t, cfg)
    same_space = centroids.shape[1] == features.shape[2]
    report = {"vocab_size": k, "n_records": n, "n_windows": int(tokens.size),
              "inertia": mean_squared_distance(features, tokens, centroids) if same_space else float("nan")}
    report.update(cluster_indices(features, tokens, cfg.sample_windows, cfg.seed))
    report.update(usage_stats(tokens, k, cfg.tiny_fraction))
    report.update({"class_purity": purity(tokens, labels), "class_pnmi": pnmi(tokens, labels),
                   "phase_purity": purity(tokens, phases), "phase_pnmi": pnmi(tokens, phases),
                   "phase_fractions": {name: float((phases == i).mean()) for i, name in enumerate(PHASES)}})
    log.info("vocabulary K=%d: inertia %.4g, perplexity %.1f, class PNMI %.3f, phase PNMI %.3f",
             k, report["inertia"], report["perplexity"], report["class_pnmi"], report["phase_pnmi"])
    return report


def write_report(report: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    return path
