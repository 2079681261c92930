"""Bootstrap intervals over test events, and paired differences between arms.

Records of one event share its source, so they are not independent draws: the
resampling unit is the **event** (all of its stations come along), as in a cluster
bootstrap. A cell of the study (one arm at one label count) has one set of test
predictions per seed; its point estimate is the mean of the seeds' metrics. Each
bootstrap replicate draws the test events with replacement *and* the seeds with
replacement, so the interval covers both the finite test set and the seed spread.

A paired difference (pretrained − scratch, SeisBert − best baseline) uses the same
event draw and the same seed draw for both arms: seed ``s`` of one arm is paired with
seed ``s`` of the other (same labelled subset), which is what makes it paired.

Balanced accuracy of a replicate is computed from per-event counts: with ``W`` the
``(B, E)`` event multiplicities, the recall of class ``c`` is
``W @ correct_c / W @ total_c``. Event-level balanced accuracy is the same with one
"record" per event (the event's mean probability against its majority label).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from seisbert.metrics import event_level


@dataclass
class Interval:
    """A point estimate with its bootstrap interval (same units as the metric)."""

    value: float
    lo: float
    hi: float
    n_seeds: int
    n_events: int


def event_counts(
    predictions: pd.DataFrame, events: np.ndarray, metric: str, threshold: float = 0.5
) -> np.ndarray:
    """``(E, 2, 2)`` counts per event in ``events`` order: [class, (total, correct)].

    ``predictions`` has ``event_id``, ``label`` and ``prob`` (P(blast)) per test record.
    For ``predicted_blast_fraction`` the "class" axis is unused: every record counts in
    class 0 and "correct" means "predicted blast".
    """
    y = predictions["label"].to_numpy().astype(int)
    prob = predictions["prob"].to_numpy(dtype=float)
    ev = predictions["event_id"].astype(str).to_numpy()
    if metric.startswith("event_"):
        order = pd.unique(ev)
        y, prob = event_level(y, prob, ev)
        ev = order
    pred = (prob >= threshold).astype(int)
    cls, hit = (
        (np.zeros_like(y), pred)
        if metric == "predicted_blast_fraction"
        else (y, (pred == y).astype(int))
    )
    index = pd.Index(events).get_indexer(ev)
    if (index < 0).any():
        raise ValueError(
            f"predictions hold event {ev[index < 0][0]!r}, which is not in the test events given"
        )
    out = np.zeros((len(events), 2, 2))
    np.add.at(out, (index, cls, 0), 1)
    np.add.at(out, (index, cls, 1), hit)
    return out


def metric_from_counts(weights: np.ndarray, counts: np.ndarray, metric: str) -> np.ndarray:
    """The metric for each row of event ``weights`` ``(B, E)`` from ``counts`` ``(E, 2, 2)``."""
    totals = weights @ counts[:, :, 0]  # (B, 2)
    correct = weights @ counts[:, :, 1]
    if metric in ("accuracy", "event_accuracy", "predicted_blast_fraction"):
        return correct.sum(1) / np.maximum(totals.sum(1), 1e-12)
    recall = np.where(totals > 0, correct / np.maximum(totals, 1e-12), np.nan)
    return np.nanmean(recall, axis=1)  # one class absent from a draw: the other's recall


def _draws(
    n_events: int, seeds: list, n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Event multiplicities ``(B, E)`` and seed picks ``(B, S)``; row 0 is the original sample."""
    weights = rng.multinomial(n_events, np.full(n_events, 1 / n_events), size=n_boot).astype(float)
    picks = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    weights[0], picks[0] = 1.0, np.arange(len(seeds))
    return weights, picks


def _cell_replicates(per_seed: list[np.ndarray], weights, picks, metric: str) -> np.ndarray:
    """``(B,)`` mean over the drawn seeds of each seed's metric on the drawn events."""
    by_seed = np.stack([metric_from_counts(weights, c, metric) for c in per_seed], axis=1)  # (B, S)
    return np.take_along_axis(by_seed, picks, axis=1).mean(axis=1)


def _test_events(*cells: dict[int, pd.DataFrame]) -> np.ndarray:
    events = [pd.unique(p["event_id"].astype(str)) for cell in cells for p in cell.values()]
    return np.unique(np.concatenate(events))


def _interval(replicates: np.ndarray, level: float, n_seeds: int, n_events: int) -> Interval:
    tail = 100 * (1 - level) / 2
    lo, hi = np.nanpercentile(replicates[1:], [tail, 100 - tail])
    return Interval(float(replicates[0]), float(lo), float(hi), n_seeds, n_events)


def _check_cell(name: str, cell: dict) -> None:
    if not cell:
        raise ValueError(f"{name} has no seeds with test predictions; nothing to bootstrap")


def bootstrap_cell(
    cell: dict[int, pd.DataFrame],
    metric: str = "balanced_accuracy",
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Mean over seeds of ``metric`` with its event-and-seed bootstrap interval.

    ``cell`` maps a seed to its test predictions (``event_id``, ``label``, ``prob``).
    """
    _check_cell("cell", cell)
    events = _test_events(cell)
    seeds = sorted(cell)
    weights, picks = _draws(len(events), seeds, n_boot, np.random.default_rng(seed))
    counts = [event_counts(cell[s], events, metric) for s in seeds]
    return _interval(
        _cell_replicates(counts, weights, picks, metric), level, len(seeds), len(events)
    )


def paired_difference(
    a: dict[int, pd.DataFrame],
    b: dict[int, pd.DataFrame],
    metric: str = "balanced_accuracy",
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Cell ``a`` minus cell ``b``, paired by seed and by test event, with its interval.

    Only the seeds both cells have are used; the test events must be the same set.
    """
    seeds = sorted(set(a) & set(b))
    _check_cell("the pair (no seed in common)", seeds)
    events = _test_events(a, b)
    weights, picks = _draws(len(events), seeds, n_boot, np.random.default_rng(seed))
    reps = [
        _cell_replicates(
            [event_counts(c[s], events, metric) for s in seeds], weights, picks, metric
        )
        for c in (a, b)
    ]
    return _interval(reps[0] - reps[1], level, len(seeds), len(events))
