"""Metrics: hand-computed numbers, agreement with scikit-learn, the event-level rule, the plot."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from seisbert.metrics import classification_metrics, event_level, plot_confusion

# Five records of three events: a = (quake, quake), b = (quake), c = (blast, blast).
Y = np.array([0, 0, 0, 1, 1])
P = np.array([0.1, 0.6, 0.3, 0.8, 0.4])  # predicted: 0 1 0 1 0
EVENTS = np.array(["a", "a", "b", "c", "c"])


def test_record_level_by_hand():
    m = classification_metrics(Y, P)
    assert m["n"] == 5
    assert m["confusion_matrix"] == [[2, 1], [1, 1]]  # tn fp / fn tp
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["f1"] == pytest.approx(0.5)  # precision 1/2, recall 1/2
    assert m["roc_auc"] == pytest.approx(5 / 6)  # 0.8 beats all 3 quakes, 0.4 beats 2 of them
    assert not any(k.startswith("event_") for k in m)


def test_event_level_by_hand():
    """Event means: a 0.35 -> quake, b 0.3 -> quake, c 0.6 -> blast: all right."""
    m = classification_metrics(Y, P, EVENTS)
    assert m["event_n"] == 3
    assert m["event_confusion_matrix"] == [[2, 0], [0, 1]]
    assert (
        m["event_accuracy"]
        == m["event_balanced_accuracy"]
        == m["event_f1"]
        == m["event_roc_auc"]
        == 1.0
    )
    labels, probs = event_level(Y, P, EVENTS)
    np.testing.assert_array_equal(labels, [0, 0, 1])
    np.testing.assert_allclose(probs, [0.35, 0.3, 0.6])


def test_event_label_majority_then_first_record():
    labels, _ = event_level(np.array([1, 0, 0, 1, 0, 1, 1]), np.zeros(7), np.array(list("xxyyzzz")))
    # x: tie, first record blast; y: tie, first record quake; z: 2 of 3 blast.
    np.testing.assert_array_equal(labels, [1, 0, 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.random(200) * 0.7, 0, 1)
    m = classification_metrics(y, p)
    pred = (p >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()


def test_threshold_is_inclusive_and_configurable():
    assert classification_metrics([1], [0.5])["confusion_matrix"] == [[0, 0], [0, 1]]
    assert classification_metrics([1], [0.5], threshold=0.6)["confusion_matrix"] == [[0, 0], [1, 0]]


def test_one_class_present():
    """All-blast test data: AUC is undefined, balanced accuracy is the blast recall."""
    m = classification_metrics([1, 1, 1, 1], [0.9, 0.8, 0.2, 0.7])
    assert math.isnan(m["roc_auc"])
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    assert m["confusion_matrix"] == [[0, 0], [1, 3]]


def test_json_ready_types():
    m = classification_metrics(Y, P, EVENTS)
    assert all(type(v) in (int, float, list) for v in m.values())


@pytest.mark.parametrize(
    "y, p, events, match",
    [
        ([0, 1], [0.5], None, "equally long; got 2 and 1"),
        ([], [], None, "non-empty"),
        ([0, 1], [0.2, 0.7], ["a"], "event_ids has 1 entries for 2 records"),
    ],
)
def test_bad_input(y, p, events, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(y, p, None if events is None else np.array(events))


def test_plot_confusion_writes_png(tmp_path):
    path = plot_confusion(
        [[50, 3], [7, 40]], ("earthquake", "blast"), tmp_path / "sub" / "cm.png", title="test"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000


def test_predictions_round_trip_and_recompute_the_metrics(tmp_path):
    from seisbert.metrics import load_predictions, save_predictions

    meta = pd.DataFrame({"event_id": ["a", "a", "b", "c", "c", "d"], "label": [0, 0, 0, 1, 1, 1]})
    rows = np.array([0, 1, 2, 3, 4])  # row 5 is not a test row
    path = save_predictions(
        tmp_path / "p" / "test_predictions.csv", meta, rows, P, {"prob_masked_all": 1 - P}
    )
    back = load_predictions(path)
    assert back.row.tolist() == rows.tolist() and back.event_id.tolist() == list(EVENTS)
    assert classification_metrics(back.label, back.prob, back.event_id) == classification_metrics(
        Y, P, EVENTS
    )
    np.testing.assert_allclose(back.prob_masked_all, 1 - P)
    with pytest.raises(FileNotFoundError, match="no test predictions at .*nothere.csv"):
        load_predictions(tmp_path / "nothere.csv")
