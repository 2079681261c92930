"""Views of what the tokens mean, each written to a PNG.

Reproduces the case study's token figures (Linville, Sandia): the 2-D UMAP map of PSD
windows coloured by token (Fig. 4) and token occurrence over event time (Fig. 5), plus
a small-multiples view of tokens grouped into kinds and the centroid spectra. Tokens
are ordered by the similarity of their time profiles (scipy hierarchical clustering,
optimal leaf order), and every view uses that order so rows line up across figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seisbert.figures import pyplot, save_figure

log = logging.getLogger(__name__)


def occurrence_profiles(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """Counts (K, T) of each token at each window index over all records (N, T)."""
    n, t = tokens.shape
    flat = tokens.astype(np.int64) * t + np.arange(t)[None, :]  # (N, T) token-major cell id
    return np.bincount(flat.ravel(), minlength=vocab_size * t).reshape(vocab_size, t)


def normalise_profiles(counts: np.ndarray) -> np.ndarray:
    """Each token's counts as a fraction of its occurrences (rows sum to 1; unused rows 0)."""
    total = counts.sum(axis=1, keepdims=True)
    return counts / np.maximum(total, 1)


def _linkage(profiles: np.ndarray):
    from scipy.cluster.hierarchy import linkage

    return linkage(profiles, method="ward", optimal_ordering=True)


PHASE_NAMES = ("pre-event noise", "first arrival (P)", "P coda", "S", "coda", "late coda")


def _phase_edges(p_window: int, s_window: int, n_windows: int) -> np.ndarray:
    """Window-index edges of ``PHASE_NAMES``: P lasts 3 s, S 8 s, coda 35 s, then late coda."""
    edges = [
        0,
        p_window,
        min(p_window + 3, s_window),
        s_window,
        s_window + 8,
        s_window + 35,
        n_windows,
    ]
    return np.minimum(np.maximum.accumulate(edges), n_windows)


def _kind_name(profile: np.ndarray, edges: np.ndarray) -> str:
    """Phases where the mean profile is densest (at least half the densest phase, at most 2)."""
    density = np.array(
        [profile[lo:hi].mean() if hi > lo else 0.0 for lo, hi in zip(edges[:-1], edges[1:])]
    )
    top = [i for i in np.argsort(-density)[:2] if density[i] >= 0.5 * density.max()]
    return " + ".join(PHASE_NAMES[i] for i in sorted(top))


def token_kinds(
    profiles: np.ndarray,
    n_kinds: int = 7,
    p_window: int = 10,
    s_window: int = 15,
    window_s: float = 1.0,
    z=None,
) -> tuple[np.ndarray, list[str]]:
    """Group tokens into ``n_kinds`` kinds by time profile (a cut of the Ward tree), named by
    the phase bins where a kind's mean profile is densest and numbered by when it peaks
    (mean profile smoothed over 5 windows).

    Returns ``kind`` (K,) int and ``names`` (one per kind), e.g. "first arrival (P)"; equal
    names get the peak time appended.
    """
    from scipy.cluster.hierarchy import fcluster
    from scipy.ndimage import uniform_filter1d

    z = _linkage(profiles) if z is None else z
    raw = fcluster(z, n_kinds, criterion="maxclust") - 1  # (K,)
    means = np.stack([profiles[raw == c].mean(axis=0) for c in range(raw.max() + 1)])  # (kinds, T)
    edges = _phase_edges(p_window, s_window, profiles.shape[1])
    names = [_kind_name(m, edges) for m in means]
    peaks = uniform_filter1d(means, 5, axis=1, mode="nearest").argmax(axis=1)
    rank = np.argsort(np.argsort(peaks, kind="stable"), kind="stable")  # kind number by peak time
    names = [
        f"{n}, peak {p * window_s:g} s" if names.count(n) > 1 else n for n, p in zip(names, peaks)
    ]
    return rank[raw], [names[c] for c in np.argsort(rank)]


@dataclass
class TokenLayout:
    """What every view shares: occurrence counts and profiles (K, T), the token order
    (kinds by peak time, then dendrogram leaf order inside a kind) and the kinds."""

    counts: np.ndarray  # (K, T) occurrences of each token at each window index
    profiles: np.ndarray  # (K, T) counts / token total
    order: np.ndarray  # (K,) token ids, top row of the heatmap first
    kind: np.ndarray  # (K,) kind number of each token
    names: list[str]  # kind names
    p_window: int
    s_window: int
    window_s: float

    @property
    def vocab_size(self) -> int:
        return len(self.counts)


def token_layout(
    tokens: np.ndarray,
    vocab_size: int,
    n_kinds: int = 7,
    p_window: int = 10,
    s_window: int = 15,
    window_s: float = 1.0,
) -> TokenLayout:
    """Profiles, order and kinds of the tokens (N, T); ``s_window`` is a typical S window."""
    from scipy.cluster.hierarchy import leaves_list

    counts = occurrence_profiles(tokens, vocab_size)
    profiles = normalise_profiles(counts)
    z = _linkage(profiles)
    kind, names = token_kinds(profiles, n_kinds, p_window, s_window, window_s, z)
    leaf_pos = np.argsort(leaves_list(z))  # position of each token among the leaves
    order = np.lexsort((leaf_pos, kind))  # kinds cut the tree, so each kind keeps its leaf order
    return TokenLayout(counts, profiles, order, kind, names, p_window, s_window, window_s)


def _kind_colors(plt, n: int) -> np.ndarray:
    return plt.get_cmap("tab10")(np.arange(n) % 10)


def plot_occurrence(layout: TokenLayout, path: str | Path) -> Path:
    """Fig. 5: heatmap (K, T) of each token's occurrences over event time, each row scaled to
    its peak, tokens in layout order; lines mark P and the typical S, a strip the kinds."""
    plt = pyplot()
    k, t = layout.counts.shape
    ws = layout.window_s
    peak_scaled = layout.profiles / np.maximum(layout.profiles.max(axis=1, keepdims=True), 1e-12)
    fig, (strip, ax) = plt.subplots(
        1,
        2,
        figsize=(10, max(4.0, 0.045 * k + 2)),
        sharey=True,
        gridspec_kw={"width_ratios": [0.025, 1], "wspace": 0.02},
    )
    colors = _kind_colors(plt, len(layout.names))
    strip.imshow(
        colors[layout.kind[layout.order]][:, None, :], aspect="auto", interpolation="nearest"
    )
    strip.set_xticks([])
    im = ax.imshow(
        peak_scaled[layout.order],
        aspect="auto",
        cmap="magma",
        interpolation="nearest",
        extent=(0, t * ws, k - 0.5, -0.5),
    )
    ax.axvline(
        layout.p_window * ws,
        color="cyan",
        lw=1.2,
        ls="--",
        label=f"P at {layout.p_window * ws:g} s",
    )
    ax.axvline(
        layout.s_window * ws,
        color="lime",
        lw=1.2,
        ls=":",
        label=f"typical S at {layout.s_window * ws:g} s",
    )
    step = max(1, k // 30)
    strip.set_yticks(np.arange(0, k, step), [str(i) for i in layout.order[::step]], fontsize=6)
    strip.set_ylabel("token id (grouped by kind, then by time-profile similarity)")
    ax.set(
        xlabel="time in segment (s)",
        title=(
            f"Token occurrence over event time (K={k}, {int(layout.counts.sum()) // t:,} records)"
        ),
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors]
    fig.legend(
        handles,
        layout.names,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.06),
        ncol=3,
        fontsize=8,
        frameon=False,
        title="kinds of token (colour strip at left)",
    )
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    fig.colorbar(im, ax=ax, label="occurrences relative to the token's busiest second", pad=0.01)
    return save_figure(fig, path, dpi=150)


def pick_tokens(layout: TokenLayout, n_tokens: int = 20) -> np.ndarray:
    """``n_tokens`` ids spread over kinds: each kind's most used tokens, round-robin."""
    used = layout.counts.sum(axis=1)
    by_kind = [
        [
            k
            for k in np.flatnonzero(layout.kind == c)[np.argsort(-used[layout.kind == c])]
            if used[k] > 0
        ]
        for c in range(len(layout.names))
    ]
    picked: list[int] = []
    while len(picked) < n_tokens and any(by_kind):
        for members in by_kind:
            if members and len(picked) < n_tokens:
                picked.append(members.pop(0))
    return np.array(sorted(picked, key=lambda k: (layout.kind[k], -used[k])), dtype=np.int64)


def plot_token_kinds(layout: TokenLayout, path: str | Path, n_tokens: int = 20) -> Path:
    """Small multiples: ``n_tokens`` tokens' occurrence over event time, coloured by kind."""
    plt = pyplot()
    picked = pick_tokens(layout, n_tokens)
    colors = _kind_colors(plt, len(layout.names))
    n_cols = 5
    n_rows = -(-len(picked) // n_cols)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(2.6 * n_cols, 1.7 * n_rows + 1.2),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    t = (np.arange(layout.counts.shape[1]) + 0.5) * layout.window_s
    share = layout.counts.sum(axis=1) / layout.counts.sum()
    for ax, k in zip(axes.flat, picked):
        ax.fill_between(
            t, 100 * layout.profiles[k], color=colors[layout.kind[k]], alpha=0.85, step="mid", lw=0
        )
        ax.axvline(layout.p_window * layout.window_s, color="k", lw=0.8, ls="--")
        ax.set_title(f"token {k} ({100 * share[k]:.1f}% of windows)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(picked) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("% of the token", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("time in segment (s)", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors]
    fig.legend(
        handles,
        layout.names,
        loc="outside upper center",
        ncol=min(4, len(layout.names)),
        fontsize=8,
        title=f"{len(picked)} tokens in {len(layout.names)} kinds, grouped by when they occur "
        f"(dashed line: P at {layout.p_window * layout.window_s:g} s)",
        title_fontsize=10,
        frameon=False,
    )
    return save_figure(fig, path, dpi=150)


def plot_umap_map(
    features: np.ndarray,
    tokens: np.ndarray,
    layout: TokenLayout,
    path: str | Path,
    sample: int = 5000,
    seed: int = 0,
    n_neighbors: int = 15,
) -> Path:
    """Fig. 4: UMAP of a seeded sample of PSD windows, coloured by token. Colours follow the
    layout order, so neighbouring colours are tokens of the same kind; the colour bar names
    the kinds and each token's id sits at the median of its points."""
    import umap

    plt = pyplot()
    n, k = tokens.size, layout.vocab_size
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    x = np.asarray(features.reshape(n, -1)[rows], dtype=np.float32)
    labels = tokens.reshape(-1)[rows].astype(np.int64)
    xy = umap.UMAP(n_neighbors=n_neighbors, min_dist=0.1, random_state=seed).fit_transform(
        x
    )  # (n, 2)
    rank = np.empty(k, np.int64)
    rank[layout.order] = np.arange(k)
    fig, ax = plt.subplots(figsize=(9, 7))
    sc = ax.scatter(
        xy[:, 0], xy[:, 1], c=rank[labels], cmap="turbo", s=3, alpha=0.7, lw=0, vmin=0, vmax=k - 1
    )
    for tok in np.unique(labels):
        cx, cy = np.median(xy[labels == tok], axis=0)
        ax.text(cx, cy, str(tok), fontsize=5, ha="center", va="center", alpha=0.8)
    ax.set(
        xlabel="UMAP 1",
        ylabel="UMAP 2",
        xticks=[],
        yticks=[],
        title=f"UMAP of {len(rows):,} PSD windows coloured by token (K={k})",
    )
    bar = fig.colorbar(sc, ax=ax, pad=0.01, label="token, grouped by kind (when it occurs)")
    bar.set_ticks(
        [np.median(rank[layout.kind == c]) for c in range(len(layout.names))],
        labels=layout.names,
        fontsize=7,
    )
    bar.ax.invert_yaxis()  # same top-to-bottom order as the heatmap
    return save_figure(fig, path, dpi=150)


def plot_centroid_spectra(
    centroids: np.ndarray,
    path: str | Path,
    layout: TokenLayout | None = None,
    freqs_hz: np.ndarray | None = None,
) -> Path:
    """Centroid spectra (K, F): a heatmap (rows in layout order when given, else by mean
    level) and, with a layout, the mean centroid spectrum of each kind of token."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    k, f = centroids.shape
    freqs_hz = np.arange(1, f + 1) if freqs_hz is None else np.asarray(freqs_hz)
    order = np.argsort(centroids.mean(axis=1)) if layout is None else layout.order
    fig, axes = plt.subplots(
        1,
        1 if layout is None else 2,
        figsize=(7 if layout is None else 12, 7),
        squeeze=False,
        layout="constrained",
    )
    lim = float(np.percentile(np.abs(centroids), 99))  # a few glitch tokens would wash out the rest
    df = (freqs_hz[-1] - freqs_hz[0]) / max(f - 1, 1)
    im = axes[0, 0].imshow(
        centroids[order],
        aspect="auto",
        cmap="RdBu_r",
        vmin=-lim,
        vmax=lim,
        interpolation="nearest",
        extent=(freqs_hz[0] - df / 2, freqs_hz[-1] + df / 2, k - 0.5, -0.5),
    )
    step = max(1, k // 30)
    axes[0, 0].set_yticks(np.arange(0, k, step), [str(i) for i in order[::step]], fontsize=6)
    axes[0, 0].set(
        xlabel="frequency (Hz)",
        title=f"Centroid spectra (K={k})",
        ylabel="token id (by mean level)" if layout is None else "token id (grouped by kind)",
    )
    fig.colorbar(
        im,
        ax=axes[0, 0],
        label="log10(PSD / record median) of the centroid",
        pad=0.01,
        extend="both",
    )
    if layout is not None:
        for c, (name, color) in enumerate(zip(layout.names, _kind_colors(plt, len(layout.names)))):
            axes[0, 1].plot(
                freqs_hz, centroids[layout.kind == c].mean(axis=0), color=color, lw=2, label=name
            )
        axes[0, 1].axhline(0, color="0.6", lw=0.8)
        axes[0, 1].set(
            xlabel="frequency (Hz)",
            ylabel="log10(PSD / record median)",
            title="Mean centroid spectrum per kind of token",
        )
        axes[0, 1].legend(fontsize=7, loc="best")
    for ax in axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return save_figure(fig, path, dpi=150)
