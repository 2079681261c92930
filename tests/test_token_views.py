"""Token views: occurrence profiles, kinds, and the PNG figures."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from seisbert.analysis import token_views
from seisbert.tokenizer import TokenizerConfig, fit_tokenizer, standin_features

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def fitted():
    features, metadata = standin_features(n_records=300, seed=1)
    tok, tokens = fit_tokenizer(
        features, metadata, TokenizerConfig(vocab_size=32, n_iter=10, device="cpu")
    )
    return features, tokens, tok.centroids, metadata


def is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 10_000 and path.read_bytes()[:8] == PNG_MAGIC


def test_occurrence_profiles_count_each_token_at_each_second():
    tokens = np.array([[0, 1, 1], [2, 1, 0]])
    counts = token_views.occurrence_profiles(tokens, 4)
    np.testing.assert_array_equal(counts, [[1, 0, 1], [0, 2, 1], [1, 0, 0], [0, 0, 0]])
    profiles = token_views.normalise_profiles(counts)
    np.testing.assert_allclose(profiles.sum(axis=1), [1, 1, 1, 0])


def test_kinds_are_named_by_when_they_occur():
    # 4 tokens before P (window < 10), 4 right at P, 4 late: three clean kinds
    t = np.arange(90)
    rng = np.random.default_rng(0)
    pre = rng.integers(0, 4, (200, 10))
    first = rng.integers(4, 8, (200, 3))
    late = rng.integers(8, 12, (200, 77))
    tokens = np.concatenate([pre, first, late], axis=1)
    layout = token_views.token_layout(tokens, 12, n_kinds=3, p_window=10, s_window=20)
    assert layout.names[0] == "pre-event noise" and layout.names[1] == "first arrival (P)"
    assert "coda" in layout.names[2]
    np.testing.assert_array_equal(layout.kind, [0] * 4 + [1] * 4 + [2] * 4)
    assert sorted(layout.order) == list(range(12))
    assert (np.diff(layout.kind[layout.order]) >= 0).all()  # rows grouped by kind, in time order
    assert t.size == tokens.shape[1]


def test_standin_kinds_look_right(fitted):
    """Pre-event tokens concentrate before P (window 10), first-arrival tokens right at it."""
    _, tokens, _, _ = fitted
    layout = token_views.token_layout(tokens, 32)

    def members(name):
        assert name in layout.names, layout.names
        return layout.kind == layout.names.index(name)

    pre, first = members("pre-event noise"), members("first arrival (P)")
    assert layout.counts[pre, :10].sum() / layout.counts[pre].sum() > 0.8
    assert layout.counts[first, 10:13].sum() / layout.counts[first].sum() > 0.8


def test_pick_tokens_spreads_over_kinds(fitted):
    _, tokens, _, _ = fitted
    layout = token_views.token_layout(tokens, 32, n_kinds=6)
    picked = token_views.pick_tokens(layout, 20)
    assert len(picked) == 20 and len(set(picked)) == 20
    assert len(set(layout.kind[picked])) == len(layout.names)


def test_views_write_pngs(fitted, tmp_path):
    _, tokens, centroids, _ = fitted
    layout = token_views.token_layout(tokens, 32)
    paths = [
        token_views.plot_occurrence(layout, tmp_path / "occ.png"),
        token_views.plot_token_kinds(layout, tmp_path / "kinds.png", n_tokens=20),
        token_views.plot_centroid_spectra(centroids, tmp_path / "spectra.png", layout),
        token_views.plot_centroid_spectra(centroids, tmp_path / "spectra_plain.png"),
    ]
    assert all(is_png(p) for p in paths)


@pytest.mark.slow
def test_umap_view_writes_png(fitted, tmp_path):
    features, tokens, _, _ = fitted
    layout = token_views.token_layout(tokens, 32)
    assert is_png(
        token_views.plot_umap_map(features, tokens, layout, tmp_path / "umap.png", sample=800)
    )


def test_plot_tokens_script_over_an_artifact(fitted, tmp_path):
    features, tokens, centroids, metadata = fitted
    art = tmp_path / "artifact"
    art.mkdir()
    np.save(art / "features.npy", features)
    np.save(art / "tokens.npy", tokens)
    np.save(art / "centroids.npy", centroids)
    metadata.to_parquet(art / "metadata.parquet")
    sys.path.insert(0, str(SCRIPTS))
    try:
        import plot_tokens
    finally:
        sys.path.remove(str(SCRIPTS))
    out = plot_tokens.main([str(art), "--out", str(tmp_path / "views"), "--skip-umap"])
    assert [p.name for p in out] == [
        "token_occurrence.png",
        "token_kinds.png",
        "centroid_spectra.png",
    ]
    assert all(is_png(p) for p in out)
