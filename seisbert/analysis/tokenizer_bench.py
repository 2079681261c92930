"""The FAISS k-means tokenizer on synthetic windows with cluster structure, timed and scored.

(a) FAISS vs scikit-learn ``KMeans`` on the same windows x 20, the same K and iterations,
    one init, FAISS with its silent subsample switched off: first from the same initial
    centroids (a seeded sample of the windows: strictly equal work), then each from its
    default seeding. Fit + assign time, and the final inertia of both measured by one
    nearest-centroid pass over all windows.
(b) Paper scale with the default config: windows as (records, 90, 20) features, fit on a
    seeded subsample of the training split (``tokenizer.max_fit_windows``), assign all; its
    inertia over all windows against a full-data fit (all windows, same seed and
    iterations), which is timed once too.
(c) The seedings (FAISS random, k-means++, AFK-MC2; greedy k-means++) at equal Lloyd work:
    final inertia per seed.

``scripts/bench/tokenizer.py`` (``make bench``, stage ``tokenizer``) is its command line.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from seisbert.tokenizer import Tokenizer, TokenizerConfig, fit_tokenizer

log = logging.getLogger(__name__)


def mixture_windows(
    n: int, dim: int = 20, n_components: int = 400, seed: int = 0, chunk: int = 1_000_000
) -> np.ndarray:
    """(n, dim) float32 from a Gaussian mixture with unequal weights and spreads, more
    components than K so k-means has real work to do."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (n_components, dim)).astype(np.float32)
    spread = rng.uniform(0.1, 0.5, n_components).astype(np.float32)
    weights = rng.dirichlet(np.full(n_components, 2.0))
    x = np.empty((n, dim), np.float32)
    for lo in range(0, n, chunk):  # bounded temporaries at 15 M rows
        hi = min(lo + chunk, n)
        comp = rng.choice(n_components, size=hi - lo, p=weights)
        x[lo:hi] = (
            rng.standard_normal((hi - lo, dim), dtype=np.float32) * spread[comp, None]
            + centres[comp]
        )
    return x


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def mean_sq_distance(x: np.ndarray, centroids: np.ndarray) -> float:
    """Inertia per window of any centroid set, measured the same way for every method."""
    cfg = TokenizerConfig(vocab_size=len(centroids), device="cpu")
    return float(
        Tokenizer(cfg, np.ascontiguousarray(centroids, np.float32))
        .search(x)[1]
        .mean(dtype=np.float64)
    )


def sklearn_fit(
    x: np.ndarray, k: int, n_iter: int, seed: int, init, repeat: int
) -> tuple[np.ndarray, float, int]:
    """scikit-learn Lloyd, one init; tol=0 so it never stops early on centre shift. Its fit
    also returns ``labels_``, so its time already holds the assign step. Best of ``repeat``."""
    from sklearn.cluster import KMeans

    times = []
    for _ in range(repeat):
        km = KMeans(
            k, init=init, n_init=1, max_iter=n_iter, tol=0.0, algorithm="lloyd", random_state=seed
        )
        times.append(timed(km.fit, x)[1])
    return km.cluster_centers_, min(times), int(km.n_iter_)


def faiss_fit(
    x: np.ndarray, cfg: TokenizerConfig, init: np.ndarray | None, repeat: int
) -> tuple[np.ndarray, float]:
    """The tokenizer's own fit (all windows, no subsample) + assign of all windows; the best
    of ``repeat`` timings."""
    times = []
    for _ in range(repeat):
        tok, t_fit = timed(
            Tokenizer(replace(cfg, max_fit_windows=None)).fit, x, init_centroids=init
        )
        times.append(t_fit + timed(tok.assign, x)[1])
    return tok.centroids, min(times)


def warm_up(x: np.ndarray, k: int) -> None:
    """Start both libraries' thread pools and BLAS once, outside the timings."""
    from sklearn.cluster import KMeans

    small = np.ascontiguousarray(x[:20_000])
    Tokenizer(TokenizerConfig(vocab_size=k, n_iter=2, device="cpu", max_fit_windows=None)).fit(
        small
    ).assign(small)
    KMeans(k, init="random", n_init=1, max_iter=2, random_state=0).fit(small)


def part_a(
    n: int, cfg: TokenizerConfig, skip_sklearn: bool, data_seed: int, repeat: int
) -> list[dict]:
    """FAISS vs scikit-learn, K and iterations equal, one init each: from the same initial
    centroids (strictly equal work), then each from its default seeding (the tokenizer:
    greedy k-means++ on ``init_sample_windows`` windows; scikit-learn: on all windows)."""
    x = mixture_windows(n, seed=data_seed)
    k = cfg.vocab_size
    warm_up(x, k)
    shared = x[np.random.default_rng(cfg.seed + 1).choice(n, size=k, replace=False)].copy()
    rows = []
    for init_name, faiss_init, sk_init in (
        ("same initial centroids", shared, shared),
        ("own default init", None, "k-means++"),
    ):
        centroids, seconds = faiss_fit(x, cfg, faiss_init, repeat)
        row = {
            "init": init_name,
            "n_windows": n,
            "k": k,
            "n_iter": cfg.n_iter,
            "faiss_s": seconds,
            "faiss_inertia": mean_sq_distance(x, centroids),
        }
        if not skip_sklearn:
            centroids, seconds, iters = sklearn_fit(x, k, cfg.n_iter, cfg.seed, sk_init, repeat)
            row.update(
                {
                    "sklearn_s": seconds,
                    "sklearn_iterations": iters,
                    "sklearn_inertia": mean_sq_distance(x, centroids),
                }
            )
            row["speedup"] = row["sklearn_s"] / row["faiss_s"]
            row["inertia_ratio"] = row["faiss_inertia"] / row["sklearn_inertia"]
        log.info("part a (%s): %s", init_name, row)
        rows.append(row)
    return rows


def paper_scale_data(n_windows: int, n_steps: int, seed: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Windows as (records, T, 20) features with an 80/10/10 train/dev/test record split."""
    n_records = n_windows // n_steps
    x = mixture_windows(n_records * n_steps, seed=seed).reshape(n_records, n_steps, -1)
    split = np.random.default_rng(seed).choice(
        ["train", "dev", "test"], size=n_records, p=[0.8, 0.1, 0.1]
    )
    return x, pd.DataFrame({"split": split})


def part_b(
    n: int,
    cfg: TokenizerConfig,
    fit_sizes: list[int],
    seeds: list[int],
    full_fit: bool,
    data_seed: int,
) -> list[dict]:
    """Default config at paper scale for each ``max_fit_windows`` and tokenizer seed, and the
    full-data reference (all windows, first seed, same iterations); inertia is over all windows."""
    features, metadata = paper_scale_data(n, 90, data_seed)
    flat = features.reshape(-1, features.shape[2])  # (N*T, F), a view
    rows = []
    for size in fit_sizes:
        for seed in seeds:
            (tok, _), seconds = timed(
                fit_tokenizer, features, metadata, replace(cfg, max_fit_windows=size, seed=seed)
            )
            rows.append(
                {
                    "max_fit_windows": size,
                    "seed": seed,
                    "n_windows": len(flat),
                    "k": cfg.vocab_size,
                    "n_iter": cfg.n_iter,
                    "fit_assign_s": seconds,
                    "inertia_all": mean_sq_distance(flat, tok.centroids),
                }
            )
            log.info("part b: %s", rows[-1])
    if full_fit:
        full, seconds = timed(
            Tokenizer(replace(cfg, max_fit_windows=None, seed=seeds[0])).fit, flat
        )
        reference = mean_sq_distance(flat, full.centroids)
        rows.append(
            {
                "max_fit_windows": None,
                "seed": seeds[0],
                "n_windows": len(flat),
                "k": cfg.vocab_size,
                "n_iter": cfg.n_iter,
                "fit_s": seconds,
                "inertia_all": reference,
            }
        )
        for row in rows:
            row["inertia_ratio_to_full"] = row["inertia_all"] / reference
    return rows


def part_c(n: int, cfg: TokenizerConfig, seeds: list[int], data_seed: int) -> list[dict]:
    """Seeding methods at equal Lloyd work: final inertia and fit time on ``n`` windows."""
    x = mixture_windows(n, seed=data_seed)
    rows = []
    for init in ("random", "kmeans++", "afkmc2", "greedy_kmeans++"):
        for seed in seeds:
            tok, seconds = timed(
                Tokenizer(replace(cfg, init=init, seed=seed, max_fit_windows=None)).fit, x
            )
            rows.append(
                {
                    "init": init,
                    "seed": seed,
                    "n_windows": n,
                    "fit_s": seconds,
                    "inertia": mean_sq_distance(x, tok.centroids),
                }
            )
            log.info("part c: %s", rows[-1])
    return rows


def summary_text(results: dict) -> str:
    """Plain-text lines with the targets (speed >= 8x, inertia within 1%)."""
    lines = [f"threads: {results['threads']} (timings depend on other load on the machine)"]
    for row in results.get("a", []):
        if "speedup" in row:
            lines.append(
                f"(a) {row['n_windows']:,} x 20, K={row['k']}, {row['n_iter']} it, "
                f"{row['init']}: FAISS {row['faiss_s']:.1f} s vs scikit-learn "
                f"{row['sklearn_s']:.1f} s -> {row['speedup']:.2f}x (target >= 8x); "
                f"inertia ratio {row['inertia_ratio']:.5f} (target within 1%)"
            )
    for row in results.get("b", []):
        ratio = row.get("inertia_ratio_to_full")
        what = (
            "full-data fit"
            if row["max_fit_windows"] is None
            else f"max_fit_windows={row['max_fit_windows']:,} seed {row['seed']}"
        )
        seconds = row.get("fit_assign_s", row.get("fit_s"))
        timed_what = " fit + assign (target < 60 s)" if "fit_assign_s" in row else " fit only"
        lines.append(
            f"(b) {row['n_windows']:,} x 20, K={row['k']}, {what}: {seconds:.1f} s"
            f"{timed_what}, inertia {row['inertia_all']:.4f}"
            + (f", ratio to full fit {ratio:.4f}" if ratio is not None else "")
        )
    for row in results.get("c", []):
        lines.append(
            f"(c) {row['n_windows']:,} x 20, init {row['init']}, seed {row['seed']}: "
            f"fit {row['fit_s']:.1f} s, inertia {row['inertia']:.4f}"
        )
    return "\n".join(lines)


def benchmark_tokenizer(
    part: str = "both",
    n_a: int = 2_000_000,
    n_b: int = 15_300_000,
    n_c: int = 1_000_000,
    k: int = 150,
    n_iter: int | None = None,
    max_fit_windows: list[int] | None = None,
    seed: int = 0,
    seeds: list[int] | None = None,
    data_seed: int = 0,
    repeat: int = 1,
    sklearn: bool = True,
    full_fit: bool = True,
) -> dict:
    """Parts (a) and (b) (``part="both"``), one of them (``"a"``, ``"b"``) or (c) (``"c"``):
    {"threads": FAISS's threads, "a"/"b"/"c": one dict per row}.

    ``n_iter`` and ``max_fit_windows`` default to the tokenizer's config; part (b) fits each
    ``max_fit_windows`` at each of ``seeds`` (default ``[seed]``), part (c) at ``seeds``
    (default ``[0, 1]``); ``repeat``: part (a) keeps the best of this many timings.
    """
    import faiss

    cfg = TokenizerConfig(vocab_size=k, seed=seed, device="cpu")
    cfg = replace(cfg, n_iter=n_iter or cfg.n_iter)
    results = {"threads": faiss.omp_get_max_threads()}
    if part in ("a", "both"):
        results["a"] = part_a(n_a, cfg, not sklearn, data_seed, repeat)
    if part in ("b", "both"):
        results["b"] = part_b(
            n_b,
            cfg,
            max_fit_windows or [cfg.max_fit_windows],
            seeds or [seed],
            full_fit,
            data_seed,
        )
    if part == "c":
        results["c"] = part_c(n_c, cfg, seeds or [0, 1], data_seed)
    return results
