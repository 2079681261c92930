"""Bootstrap intervals over test events: known cases, pairing, and the event as the unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seisbert.metrics import classification_metrics
from seisbert.study.stats import bootstrap_cell, paired_difference


def predictions(correct: np.ndarray, labels: np.ndarray, stations: int = 1) -> pd.DataFrame:
    """One row per record: ``stations`` records per event, all right or all wrong."""
    y = np.repeat(labels, stations)
    right = np.repeat(correct, stations).astype(bool)
    prob = np.where(right, y, 1 - y).astype(float) * 0.8 + 0.1
    events = np.repeat([f"e{i}" for i in range(len(labels))], stations)
    return pd.DataFrame({"event_id": events, "label": y, "prob": prob})


def test_accuracy_interval_matches_the_binomial_standard_error():
    """400 one-record events, 300 right: 0.75 ± 1.96 sqrt(0.75 * 0.25 / 400) = ± 0.042."""
    correct = np.r_[np.ones(300), np.zeros(100)]
    cell = {0: predictions(correct, np.zeros(400, int))}
    ci = bootstrap_cell(cell, "accuracy", n_boot=4000, seed=1)
    assert ci.value == pytest.approx(0.75)
    assert ci.lo == pytest.approx(0.75 - 0.0424, abs=0.006)
    assert ci.hi == pytest.approx(0.75 + 0.0424, abs=0.006)
    assert (ci.n_seeds, ci.n_events) == (1, 400)


def test_balanced_accuracy_point_equals_the_metric_and_a_perfect_model_has_no_spread():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    cell = {0: predictions(rng.random(300) < 0.8, labels, stations=3)}
    ci = bootstrap_cell(cell, n_boot=500)
    expected = classification_metrics(cell[0].label, cell[0].prob, cell[0].event_id)
    assert ci.value == pytest.approx(expected["balanced_accuracy"])
    assert ci.lo < ci.value < ci.hi
    event = bootstrap_cell(cell, "event_balanced_accuracy", n_boot=200)
    assert event.value == pytest.approx(expected["event_balanced_accuracy"])
    perfect = bootstrap_cell({0: predictions(np.ones(300), labels)}, n_boot=200)
    assert (perfect.value, perfect.lo, perfect.hi) == (1.0, 1.0, 1.0)


def test_events_are_the_unit_more_stations_do_not_narrow_the_interval():
    """Copies of the same event are not new evidence: 5 stations per event, same width."""
    rng = np.random.default_rng(2)
    correct, labels = rng.random(200) < 0.7, rng.integers(0, 2, 200)
    one = bootstrap_cell({0: predictions(correct, labels, 1)}, n_boot=2000, seed=3)
    five = bootstrap_cell({0: predictions(correct, labels, 5)}, n_boot=2000, seed=3)
    assert five.hi - five.lo == pytest.approx(one.hi - one.lo, rel=1e-9)
    assert five.n_events == 200


def test_seed_spread_widens_the_interval():
    labels = np.tile([0, 1], 200)
    rng = np.random.default_rng(4)
    same = {s: predictions(rng.random(400) < 0.75, labels) for s in range(3)}
    spread = {s: predictions(rng.random(400) < p, labels) for s, p in enumerate([0.55, 0.75, 0.95])}
    width = lambda c: bootstrap_cell(c, n_boot=1000).hi - bootstrap_cell(c, n_boot=1000).lo  # noqa: E731
    assert width(spread) > 1.5 * width(same)


def test_paired_difference_known_case_and_identity():
    """A right on every event, B on 75% of them: +0.25 ± 1.96 sqrt(.25 * .75 / 400)."""
    labels = np.zeros(400, int)
    a = {0: predictions(np.ones(400), labels)}
    b = {0: predictions(np.r_[np.ones(300), np.zeros(100)], labels)}
    d = paired_difference(a, b, "accuracy", n_boot=4000, seed=5)
    assert d.value == pytest.approx(0.25)
    assert (d.lo, d.hi) == (
        pytest.approx(0.25 - 0.0424, abs=0.006),
        pytest.approx(0.25 + 0.0424, abs=0.006),
    )
    same = paired_difference(b, b, n_boot=300)
    assert (same.value, same.lo, same.hi) == (0.0, 0.0, 0.0)


def test_pairing_cancels_shared_errors():
    """Both arms miss the same hard events; B misses 10 more. Paired: tight around +0.025;
    the unpaired intervals of the two cells overlap widely."""
    labels = np.tile([0, 1], 200)
    hard = np.zeros(400, bool)
    hard[:120] = True
    a = {0: predictions(~hard, labels)}
    extra = hard.copy()
    extra[120:130] = True
    b = {0: predictions(~extra, labels)}
    d = paired_difference(a, b, n_boot=2000)
    ca, cb = bootstrap_cell(a, n_boot=2000), bootstrap_cell(b, n_boot=2000)
    assert d.value == pytest.approx(ca.value - cb.value)
    assert d.lo > 0  # paired, the gain is clear ...
    assert ca.lo < cb.hi  # ... unpaired it is not
    assert d.hi - d.lo < 0.5 * (ca.hi - ca.lo)


def test_only_common_seeds_are_paired_and_bad_input_is_named():
    labels = np.tile([0, 1], 50)
    a = {0: predictions(np.ones(100), labels), 1: predictions(np.ones(100), labels)}
    b = {1: predictions(np.zeros(100), labels)}
    assert paired_difference(a, b, n_boot=50).n_seeds == 1
    with pytest.raises(ValueError, match="no seed in common"):
        paired_difference(a, {7: b[1]}, n_boot=10)
    with pytest.raises(ValueError, match="no seeds with test predictions"):
        bootstrap_cell({})
