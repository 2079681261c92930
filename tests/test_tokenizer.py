"""Tokenizer (FAISS k-means) and vocabulary-quality report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seisbert.analysis.tokenizer_bench import benchmark_tokenizer, summary_text
from seisbert.tokenizer import (
    Tokenizer,
    TokenizerConfig,
    fit_tokenizer,
    standin_features,
    training_windows,
)
from seisbert.vocabulary import (
    ReportConfig,
    phase_bins,
    pnmi,
    purity,
    usage_stats,
    vocabulary_report,
    write_report,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def standin():
    return standin_features(n_records=240, seed=3)  # 21,600 windows


def small_cfg(**kw) -> TokenizerConfig:
    return TokenizerConfig(**{"vocab_size": 16, "n_iter": 10, "device": "cpu", **kw})


def brute_force_ids(windows: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d2 = ((windows[:, None, :].astype(np.float64) - centroids[None].astype(np.float64)) ** 2).sum(
        -1
    )  # (n, K)
    return d2.argmin(axis=1), d2


def test_assign_equals_brute_force_nearest_centroid(standin):
    features, metadata = standin
    tok, tokens = fit_tokenizer(features, metadata, replace(small_cfg(), assign_chunk_windows=5000))
    windows = features.reshape(-1, features.shape[2])
    ids, d2 = brute_force_ids(windows, tok.centroids)
    differ = np.flatnonzero(tokens.ravel() != ids)
    # float32 search vs float64 brute force may only disagree on exact ties
    assert len(differ) <= 5
    rows = np.arange(len(windows))[differ]
    np.testing.assert_allclose(d2[rows, tokens.ravel()[differ]], d2[rows, ids[differ]], rtol=1e-5)
    assert tokens.dtype == np.int16 and tokens.shape == features.shape[:2]


def test_spherical_assign_is_max_cosine(standin):
    features, metadata = standin
    tok, tokens = fit_tokenizer(features, metadata, small_cfg(spherical=True))
    w = features.reshape(-1, features.shape[2]).astype(np.float64)
    cos = (w / np.linalg.norm(w, axis=1, keepdims=True)) @ tok.centroids.T.astype(np.float64)
    assert (tokens.ravel() == cos.argmax(axis=1)).mean() > 0.9999


def test_fit_never_sees_dev_or_test(standin):
    features, metadata = standin
    poisoned = features.copy()
    held_out = metadata["split"].to_numpy() != "train"
    poisoned[held_out] = 1e4  # one extreme point cloud: any centroid fit on it would sit there
    tok, tokens = fit_tokenizer(poisoned, metadata, small_cfg(max_fit_windows=None))
    assert np.abs(tok.centroids).max() < 50
    assert tok.n_fit_windows == (~held_out).sum() * features.shape[1]
    assert tokens[held_out].min() >= 0 and tokens[held_out].max() < 16  # still assigned


def test_training_windows_subsample_only_train_rows(standin):
    features, metadata = standin
    tagged = np.zeros_like(features)
    tagged[..., 0] = np.arange(len(features))[:, None]  # bin 0 holds the record index
    got = training_windows(tagged, metadata, max_windows=1000, seed=0)
    assert got.shape == (1000, features.shape[2])
    assert set(metadata["split"].iloc[got[:, 0].astype(int)]) == {"train"}
    again = training_windows(tagged, metadata, max_windows=1000, seed=0)
    np.testing.assert_array_equal(got, again)


def test_split_errors(standin):
    features, metadata = standin
    with pytest.raises(ValueError, match="no 'split' column"):
        fit_tokenizer(features, metadata.drop(columns="split"), small_cfg())
    with pytest.raises(ValueError, match="no training records"):
        fit_tokenizer(features, metadata.assign(split="dev"), small_cfg())
    with pytest.raises(ValueError, match="240 records but metadata 10 rows"):
        fit_tokenizer(features, metadata.iloc[:10], small_cfg())


@pytest.mark.parametrize("k", [8, 150])
def test_vocab_sizes_8_and_150(standin, k):
    features, metadata = standin
    tok, tokens = fit_tokenizer(features, metadata, small_cfg(vocab_size=k))
    assert tok.centroids.shape == (k, features.shape[2]) and tok.centroids.dtype == np.float32
    assert tokens.min() >= 0 and tokens.max() == k - 1  # every id reachable on 21,600 windows
    assert usage_stats(tokens, k)["empty_fraction"] < 0.05


@pytest.mark.parametrize("bad", [7, 151, 200])
def test_bad_vocab_size_names_the_key(bad):
    with pytest.raises(
        ValueError, match=rf"tokenizer\.vocab_size={bad} is out of range; allowed \[8, 150\]"
    ):
        TokenizerConfig(vocab_size=bad)


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("method", "pca", r"tokenizer\.method='pca' is not allowed"),
        ("device", "tpu", r"tokenizer\.device='tpu' is not allowed"),
        ("init", "kmeans", r"tokenizer\.init='kmeans' is not allowed"),
        ("max_fit_windows", 10, r"tokenizer\.max_fit_windows=10 is out of range"),
        (
            "report",
            {"_target_": "seisbert.vocabulary.ReportConfig", "tiny": 1},
            r"tokenizer\.report\.tiny is not a known key",
        ),
    ],
)
def test_bad_options_name_the_key(key, value, match):
    with pytest.raises(ValueError, match=match):
        TokenizerConfig(**{key: value})


def test_yaml_configs_build():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from seisbert.config import build

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        composed = compose("train", overrides=["tokenizer=kmeans"]).tokenizer
    cfg = build(composed, "tokenizer")
    # kmeans.yaml extends the dataclass defaults (the report's through ReportConfig's)
    assert replace(cfg, report=TokenizerConfig().report) == replace(
        TokenizerConfig(), vocab_size=150
    )
    assert build(cfg.report, "tokenizer.report") == ReportConfig()
    alt = OmegaConf.load(CONFIGS / "tokenizer" / "umap_waveform.yaml")
    assert alt.method == "umap_waveform"


def test_cuda_without_gpu_fails_with_hint(standin):
    import faiss

    if faiss.get_num_gpus() > 0:
        pytest.skip("a GPU is visible; this checks the CPU-only message")
    features, metadata = standin
    with pytest.raises(
        ValueError, match="tokenizer.device='cuda' but FAISS sees no GPU; install faiss-gpu"
    ):
        fit_tokenizer(features, metadata, small_cfg(device="cuda"))


def test_save_load_round_trip_exact(standin, tmp_path):
    features, metadata = standin
    tok, tokens = fit_tokenizer(features, metadata, small_cfg())
    back = Tokenizer.load(tok.save(tmp_path / "tok"))
    np.testing.assert_array_equal(back.centroids, tok.centroids)
    assert (
        back.cfg == tok.cfg
        and back.inertia == tok.inertia
        and back.n_fit_windows == tok.n_fit_windows
    )
    np.testing.assert_array_equal(
        back.assign(features.reshape(-1, features.shape[2])), tokens.ravel()
    )
    np.testing.assert_array_equal(back.tokenize(features), tokens)


def test_same_seed_same_centroids_other_seed_differs(standin):
    features, metadata = standin
    a, _ = fit_tokenizer(features, metadata, small_cfg(seed=5))
    b, _ = fit_tokenizer(features, metadata, small_cfg(seed=5))
    c, _ = fit_tokenizer(features, metadata, small_cfg(seed=6))
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert not np.array_equal(a.centroids, c.centroids)


@pytest.mark.parametrize("init", ["greedy_kmeans++", "random", "kmeans++", "afkmc2"])
def test_every_init_fits(standin, init):
    features, metadata = standin
    cfg = small_cfg(init=init)
    tok, _ = fit_tokenizer(features, metadata, cfg)
    windows = training_windows(features, metadata, cfg.max_fit_windows, cfg.seed)
    _, d2 = brute_force_ids(windows, tok.centroids)
    # inertia is the fit windows' mean squared distance to their nearest centroid ...
    assert tok.inertia == pytest.approx(d2.min(1).mean(), rel=1e-4)
    # ... and k-means refined its seeds: 0.24 of one centroid's (measured for every init);
    # the seeds themselves, unrefined, score 0.36-0.39
    one_centroid = ((windows - windows.mean(0)) ** 2).sum(-1).mean()
    assert tok.inertia < 0.3 * one_centroid


def test_redo_keeps_the_best_run(standin):
    features, metadata = standin
    one, _ = fit_tokenizer(features, metadata, small_cfg(n_redo=1, seed=1))
    three, _ = fit_tokenizer(features, metadata, small_cfg(n_redo=3, seed=1))
    assert three.inertia <= one.inertia * (1 + 1e-6)


def test_fit_rejects_nan_and_too_few_windows():
    x = np.zeros((100, 4), np.float32)
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        Tokenizer(small_cfg()).fit(x)
    with pytest.raises(
        ValueError,
        match=r"tokenizer\.vocab_size=16 needs at least that many training windows; got 10",
    ):
        Tokenizer(small_cfg()).fit(np.ones((10, 4), np.float32))


def raw_windows(n_records: int = 90, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Raw waveform windows (N, T=90, S=100): noise before P, a decaying wave train after it."""
    rng = np.random.default_rng(seed)
    t = np.arange(90 * 100) / 100.0 - 10.0  # seconds after P
    amp = 10 ** rng.uniform(0, 3, (n_records, 1))
    env = 1 + amp * np.where(t >= 0, np.exp(-np.maximum(t, 0) / 8.0), 0.0)[None]
    wave = (rng.standard_normal((n_records, t.size)) * env).astype(np.float32)
    split = np.where(np.arange(n_records) % 5 < 3, "train", "dev")
    return wave.reshape(n_records, 90, 100), pd.DataFrame({"split": split})


def test_kmeans_on_raw_waveforms_runs_and_reports_usage():
    windows, metadata = raw_windows()
    cfg = small_cfg(method="kmeans_waveform", waveform_normalize="none")
    tok, tokens = fit_tokenizer(windows, metadata, cfg)
    assert tok.centroids.shape == (16, 100) and tokens.shape == (90, 90)
    np.testing.assert_array_equal(tok.tokenize(windows), tokens)
    usage = usage_stats(tokens, 16)
    # raw amplitudes span 3 decades: most windows are small and fall into one cluster
    assert usage["largest_token_fraction"] > 0.5


@pytest.mark.slow
def test_umap_waveform_round_trip(tmp_path):
    windows, metadata = raw_windows(40)
    cfg = small_cfg(method="umap_waveform", umap_max_fit_windows=1000, umap_n_components=4)
    tok, tokens = fit_tokenizer(windows, metadata, cfg)
    assert tok.centroids.shape == (16, 4) and tokens.shape == (40, 90)
    back = Tokenizer.load(tok.save(tmp_path / "tok"))
    np.testing.assert_array_equal(back.tokenize(windows[:3]), tokens[:3])  # UMAP reducer pickled


# --------------------------------------------------------------------------- vocabulary report
def test_pnmi_and_purity_limits():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200_000)
    perfect = labels * 3 + rng.integers(0, 3, labels.size)  # each token implies one label
    assert pnmi(perfect, labels) == pytest.approx(1.0)
    assert purity(perfect, labels) == pytest.approx(1.0)
    independent = rng.integers(0, 50, labels.size)
    assert pnmi(independent, labels) < 0.002
    assert purity(independent, labels) == pytest.approx(0.25, abs=0.02)
    assert np.isnan(pnmi(independent, np.zeros_like(labels)))  # H(label) = 0


def test_usage_stats():
    uniform = np.tile(np.arange(8), 100)
    u = usage_stats(uniform, 16, tiny_fraction=0.01)
    assert u["entropy_bits"] == pytest.approx(3.0) and u["perplexity"] == pytest.approx(8.0)
    assert u["empty_fraction"] == 0.5 and u["tiny_fraction"] == 0.0 and u["n_used"] == 8
    skewed = np.r_[np.zeros(999, int), 1]
    s = usage_stats(skewed, 8, tiny_fraction=0.01)
    assert s["largest_token_fraction"] == 0.999 and s["tiny_fraction"] == 1 / 8


def test_phase_bins_follow_picks():
    cfg = ReportConfig()
    meta = pd.DataFrame(
        {
            "trace_p_arrival_sample": [1000, 1000, 1000],
            "trace_s_arrival_sample": [1000 + 700, 1000 + 230, np.nan],
        }
    )
    bins = phase_bins(meta, 90, cfg)
    p, s, c = 1, 2, 3
    assert (bins[:, :10] == 0).all()
    np.testing.assert_array_equal(
        bins[0, 10:40], [p] * 5 + [c] * 2 + [s] * 15 + [c] * 8
    )  # S at 17 s
    np.testing.assert_array_equal(
        bins[1, 10:30], [p] * 2 + [s] * 15 + [c] * 3
    )  # S at 12 s cuts P short
    np.testing.assert_array_equal(
        bins[2, 10:31], [p] * 5 + [s] * 15 + [c]
    )  # no S pick: fixed 15-29
    no_s = phase_bins(meta.drop(columns="trace_s_arrival_sample"), 90, cfg)
    np.testing.assert_array_equal(no_s[0], bins[2])


def test_vocabulary_report(standin, tmp_path):
    features, metadata = standin
    tok, tokens = fit_tokenizer(features, metadata, small_cfg(max_fit_windows=None))
    report = vocabulary_report(
        features, tokens, tok.centroids, metadata, ReportConfig(sample_windows=3000)
    )
    train = (metadata["split"] == "train").to_numpy()
    assert (
        report["vocab_size"] == 16 and report["n_windows"] == tokens[train].size
    )  # train rows only
    # the fit saw the same train windows (all of them: max_fit_windows=None)
    assert report["inertia"] == pytest.approx(tok.inertia, rel=1e-4)
    assert report["davies_bouldin"] > 0 and report["calinski_harabasz"] > 0
    assert (
        0 < report["class_pnmi"] < report["phase_pnmi"] < 1
    )  # stand-in tokens know time, not class
    assert sum(report["phase_fractions"].values()) == pytest.approx(1.0)
    path = write_report(report, tmp_path / "r" / "vocabulary_report.json")
    assert json.loads(path.read_text())["vocab_size"] == 16


def test_tokenizer_bench_runs_small():
    out = benchmark_tokenizer(n_a=20000, n_b=18000, n_iter=3, k=16, max_fit_windows=[5000])
    same = out["a"][0]
    assert same["init"] == "same initial centroids" and same["inertia_ratio"] == pytest.approx(
        1.0, abs=1e-4
    )
    assert [r["max_fit_windows"] for r in out["b"]] == [5000, None]
    assert "target >= 8x" in summary_text(out)
