"""Baselines: they learn a learnable stand-in, choose on dev, never fit on test, repeat by seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seisbert.baselines import (
    BASELINES,
    BaselineResult,
    baseline_config,
    config_class,
    fit_baseline,
)
from seisbert.baselines.cnn import CNNConfig
from seisbert.baselines.forest import BoostingConfig, ForestConfig, token_inputs
from seisbert.data.subsets import label_subsets

T, F, K = 90, 20, 32


def make_standin(n_events: int = 240, seed: int = 0, strength: float = 1.0):
    """Seeded stand-in for (features, tokens, metadata): blasts carry a notch and a high-f deficit.

    The signal lives in the PSD windows after the P arrival (windows 10..60) with a
    per-record gain from U(0.2, 1) (an SNR stand-in) times ``strength``; a quarter of
    the earthquakes carry a weaker notch, every event has its own path spectrum, and 2%
    of events have a flipped label: learnable, not trivial. Events have 2-7 stations and
    are split 60/20/20 by event.
    """
    rng = np.random.default_rng(seed)
    stations = rng.integers(2, 8, n_events)
    event_of_row = np.repeat(np.arange(n_events), stations)
    n = len(event_of_row)
    blast = (rng.random(n_events) < 0.4).astype(int)
    notch_bin = rng.integers(3, 15, n_events)[event_of_row][:, None, None]  # (N, 1, 1)
    notch_depth = np.where(blast == 1, 2.0, np.where(rng.random(n_events) < 0.25, 0.8, 0.0))[
        event_of_row
    ]
    x = rng.normal(0.0, 0.7, (n, T, F)).astype(np.float32)  # (N, T, F) window noise
    x += rng.normal(0.0, 0.4, (n_events, 1, F)).astype(np.float32)[
        event_of_row
    ]  # event/path spectrum
    gain = strength * rng.uniform(0.2, 1.0, n)[:, None, None]  # (N, 1, 1) per-record SNR
    freq = np.arange(F)[None, None, :]
    notch = notch_depth[:, None, None] * np.exp(-0.5 * ((freq - notch_bin) / 1.5) ** 2)  # (N, 1, F)
    deficit = 1.0 * blast[event_of_row][:, None, None] * (freq >= 12)  # (N, 1, F)
    x[:, 10:60] -= (gain * (notch + deficit)).astype(np.float32)
    flipped = rng.random(n_events) < 0.02
    split = np.array(["train", "dev", "test"])[np.searchsorted([0.6, 0.8], rng.random(n_events))]
    metadata = pd.DataFrame(
        {
            "event_id": [f"ev{e:05d}" for e in event_of_row],
            "station_id": [f"ST{s:02d}" for s in rng.integers(0, 60, n)],
            "label": np.where(flipped, 1 - blast, blast)[event_of_row],
            "split": split[event_of_row],
        }
    )
    return x, quantize(x, K, seed), metadata


def quantize(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Nearest of k windows drawn as centroids: a k-means stand-in giving (N, T) int16 tokens."""
    windows = x.reshape(-1, x.shape[-1])
    centroids = windows[np.random.default_rng(seed).choice(len(windows), k, replace=False)]
    dist = (centroids**2).sum(1)[None, :] - 2.0 * windows @ centroids.T  # (N*T, k), |w|^2 dropped
    return dist.argmin(1).astype(np.int16).reshape(x.shape[:2])


@pytest.fixture(scope="module")
def standin():
    return make_standin(strength=1.5)


def small(name: str):
    """Configs small enough for a 2-core test run."""
    return {
        "rf": ForestConfig(max_depth_grid=[4, 12], n_estimators=40, n_jobs=1),
        "hgb": BoostingConfig(
            learning_rate_grid=[0.1, 0.3], max_leaf_nodes_grid=[7], max_iter=30, n_jobs=1
        ),
        "cnn": CNNConfig(
            channels=[8, 16, 16], lr_grid=[1e-3, 3e-3], max_steps=60, val_every_steps=20, n_jobs=1
        ),
    }[name]


@pytest.mark.parametrize("name", list(BASELINES))
def test_beats_chance_and_reports_its_choice(standin, name):
    features, tokens, metadata = standin
    train_idx = label_subsets(metadata, sizes=[None], seed=0)[None]
    cfg = small(name)
    result = fit_baseline(name, cfg, features, tokens, metadata, train_idx, seed=0)
    assert isinstance(result, BaselineResult)
    assert result.test["balanced_accuracy"] > 0.65, result.test  # measured 0.75-0.80; chance 0.5
    assert result.test["n"] == (metadata["split"] == "test").sum()
    assert "event_balanced_accuracy" in result.test and result.test["event_n"] < result.test["n"]
    # What was tried is the whole grid, and the choice is the dev-best of it.
    assert [t["params"] for t in result.tried] == cfg.grid()
    scores = [t["dev"][cfg.selection_metric] for t in result.tried]
    assert result.chosen == cfg.grid()[int(np.argmax(scores))]
    assert result.dev[cfg.selection_metric] == max(scores)


@pytest.mark.parametrize("name", list(BASELINES))
def test_seeded_and_blind_to_test_rows(standin, name):
    """Same seed: same fit. Scrambling every test row (features, tokens, labels) changes
    the test score and nothing else, so test rows never reach fitting or the choice.
    Another seed gives another forest and another CNN."""
    features, tokens, metadata = standin
    train_idx = label_subsets(metadata, sizes=[120], seed=1)[120]
    test = np.flatnonzero(metadata["split"].to_numpy() == "test")
    rng = np.random.default_rng(9)
    features2, tokens2, metadata2 = features.copy(), tokens.copy(), metadata.copy()
    features2[test] = rng.normal(5.0, 3.0, features2[test].shape)
    tokens2[test] = rng.integers(0, K, tokens2[test].shape)
    metadata2.loc[test, "label"] = 1 - metadata2.loc[test, "label"]
    a = fit_baseline(name, small(name), features, tokens, metadata, train_idx, seed=0)
    b = fit_baseline(name, small(name), features2, tokens2, metadata2, train_idx, seed=0)
    c = fit_baseline(name, small(name), features, tokens, metadata, train_idx, seed=1)
    assert [(t["params"], t["dev"]) for t in a.tried] == [(t["params"], t["dev"]) for t in b.tried]
    assert a.chosen == b.chosen and a.dev == b.dev and a.train == b.train
    assert a.test != b.test  # the scrambled test set is in fact what gets scored
    if name != "hgb":  # without early stopping HistGradientBoosting does not draw random numbers
        assert a.dev["roc_auc"] != c.dev["roc_auc"]


@pytest.mark.parametrize("name", list(BASELINES))
def test_a_given_setting_refits_the_model_the_whole_grid_chose(standin, name):
    """What the study's other seeds do: fit only the setting chosen at the tuning seed."""
    features, tokens, metadata = standin
    train_idx = label_subsets(metadata, sizes=[120], seed=1)[120]
    full = fit_baseline(name, small(name), features, tokens, metadata, train_idx, seed=0)
    one = fit_baseline(
        name, small(name), features, tokens, metadata, train_idx, seed=0, grid=[full.chosen]
    )
    assert [t["params"] for t in one.tried] == [full.chosen] and one.chosen == full.chosen
    assert one.dev == full.dev and one.test == full.test
    with pytest.raises(ValueError, match="grid to try is empty"):
        fit_baseline(name, small(name), features, tokens, metadata, train_idx, grid=[])


def test_rejects_rows_outside_train(standin):
    features, tokens, metadata = standin
    dev_row = int(np.flatnonzero(metadata["split"].to_numpy() == "dev")[0])
    with pytest.raises(ValueError, match="outside the train split"):
        fit_baseline(
            "hgb", small("hgb"), features, tokens, metadata, np.array([0, dev_row]), seed=0
        )


def test_unknown_name_and_mismatched_config(standin):
    features, tokens, metadata = standin
    with pytest.raises(ValueError, match="baseline='svm' is not allowed"):
        fit_baseline("svm", small("rf"), features, tokens, metadata, np.array([0]))
    with pytest.raises(ValueError, match="needs a ForestConfig; got CNNConfig"):
        fit_baseline("rf", small("cnn"), features, tokens, metadata, np.array([0]))
    with pytest.raises(ValueError, match="rf needs tokens"):
        fit_baseline("rf", small("rf"), features, None, metadata, label_subsets(metadata, [50])[50])


@pytest.mark.parametrize("name", list(BASELINES))
def test_the_composed_config_builds_the_dataclass_defaults(name):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(Path("configs").resolve()), version_base="1.3"):
        node = compose("train", overrides=[f"experiment=baseline_{name}"]).baseline
    cls = config_class(name)
    assert node["_target_"] == f"{cls.__module__}.{cls.__name__}"
    assert baseline_config(name, node) == cls()  # the YAML extends the defaults, changing none


@pytest.mark.parametrize(
    "name, key, value, match",
    [
        ("rf", "max_depth_grid", [12, 0], r"baseline.max_depth_grid\[1\]=0 is out of range"),
        ("rf", "max_depth_grid", [], r"baseline.max_depth_grid=\[\] is empty"),
        ("rf", "features", "bag", r"baseline.features='bag' is not allowed"),
        (
            "hgb",
            "learning_rate_grid",
            [0.1, 2.0],
            r"baseline.learning_rate_grid\[1\]=2.0 is out of range",
        ),
        ("hgb", "max_leaf_nodes_grid", [1], r"baseline.max_leaf_nodes_grid\[0\]=1 is out of range"),
        ("cnn", "lr_grid", [0.0], r"baseline.lr_grid\[0\]=0.0 is out of range"),
        (
            "cnn",
            "val_every_steps",
            2000,
            r"baseline.val_every_steps=2000 is out of range; allowed \[1, 1500\]",
        ),
        ("cnn", "accelerator", "tpu", r"baseline.accelerator='tpu' is not allowed"),
        ("cnn", "selection_metric", "loss", r"baseline.selection_metric='loss' is not allowed"),
    ],
)
def test_config_validation_names_the_key(name, key, value, match):
    with pytest.raises(ValueError, match=match):
        config_class(name)(**{key: value})


def test_token_inputs_sequence_and_histogram():
    tokens = np.array([[0, 2, 2], [1, 1, 1]], dtype=np.int16)
    np.testing.assert_array_equal(token_inputs(tokens, "sequence"), [[0, 2, 2], [1, 1, 1]])
    np.testing.assert_array_equal(token_inputs(tokens, "histogram"), [[1, 0, 2], [0, 3, 0]])
    assert token_inputs(tokens, "sequence+histogram").shape == (2, 6)


@pytest.mark.parametrize("kind", ["histogram", "sequence+histogram"])
def test_rf_token_feature_options_learn(standin, kind):
    features, tokens, metadata = standin
    train_idx = label_subsets(metadata, sizes=[None], seed=0)[None]
    cfg = ForestConfig(max_depth_grid=[8], n_estimators=40, features=kind, n_jobs=1)
    assert (
        fit_baseline("rf", cfg, None, tokens, metadata, train_idx).test["balanced_accuracy"] > 0.6
    )
