"""Label-limited training subsets for the label curve (paper Fig. 7).

Linville's case study fine-tunes with 50, 120, 500 and all labelled records. Every arm
(scratch, MLM, MLM+SL, random forest, boosted trees, CNN) must see the *same* labelled
records at a given seed, so the subsets are drawn here once, from metadata alone:

- from the ``train`` split only;
- by event: an event's stations are all in or all out, so a subset never holds one
  station of an event whose other stations it lacks;
- class-balanced: events are added to whichever class has fewer records so far, so
  the two classes differ by at most one event's stations (while both have events left);
- nested: all sizes are prefixes of one seeded event order, so the 50 subset lies
  inside the 120 one, which lies inside 500, which lies inside ``None`` (all);
- sizes count records: a subset is the shortest prefix with at least ``size``
  records, so it overshoots by less than the stations of its last event.

``None`` means the whole training split with its natural class ratio.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_SIZES = (50, 120, 500, None)


def label_subsets(
    metadata: pd.DataFrame, sizes: Sequence[int | None] = DEFAULT_SIZES, seed: int = 0
) -> dict[int | None, np.ndarray]:
    """Nested, class-balanced, event-grouped subsets of the training rows.

    Args:
        metadata: one row per record with columns ``split``, ``event_id``, ``label``.
        sizes: record counts; ``None`` is the whole training split.
        seed: the same seed gives the same subsets; another seed another event order.

    Returns:
        ``{size: sorted positional row indices (int64)}`` in the order of ``sizes``.
    """
    _check_sizes(sizes)
    train_rows = np.flatnonzero(metadata["split"].to_numpy() == "train")
    if len(train_rows) == 0:
        raise ValueError("label_subsets: metadata has no rows with split == 'train'")
    train = metadata.iloc[train_rows]
    events, event_of_row = np.unique(train["event_id"].astype(str).to_numpy(), return_inverse=True)
    counts = np.bincount(event_of_row, minlength=len(events))
    order = _balanced_event_order(
        _event_labels(train["label"].to_numpy(), event_of_row, len(events)), counts, seed
    )
    cumulative = np.cumsum(counts[order])  # records in the first k+1 events of the order
    subsets = {}
    for size in sizes:
        if size is not None and size > cumulative[-1]:
            raise ValueError(
                f"label subset size {size} exceeds the {cumulative[-1]} training records; "
                "lower the size or use None for all"
            )
        n_events = len(order) if size is None else int(np.searchsorted(cumulative, size) + 1)
        chosen = np.isin(event_of_row, order[:n_events])
        subsets[size] = np.sort(train_rows[chosen]).astype(np.int64)
        if size is not None:
            _warn_if_unbalanced(size, train["label"].to_numpy()[chosen], counts.max())
    return subsets


def _warn_if_unbalanced(size: int, labels: np.ndarray, max_stations: int) -> None:
    n_blast = int(labels.sum())
    if abs(len(labels) - 2 * n_blast) > max_stations:
        log.warning(
            "label subset of %d records is unbalanced (%d earthquake, %d blast): "
            "one class ran out of training events",
            size,
            len(labels) - n_blast,
            n_blast,
        )


def _check_sizes(sizes: Sequence[int | None]) -> None:
    for size in sizes:
        if size is not None and (
            isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1
        ):
            raise ValueError(f"label subset size {size!r} must be a positive integer or None (all)")


def _event_labels(labels: np.ndarray, event_of_row: np.ndarray, n_events: int) -> np.ndarray:
    """Majority label per event; a tie goes to the label of the event's first row."""
    blast_fraction = np.bincount(event_of_row, weights=labels.astype(float), minlength=n_events)
    blast_fraction /= np.bincount(event_of_row, minlength=n_events)
    _, first_row = np.unique(event_of_row, return_index=True)  # every event has a row
    tie_label = labels[first_row]
    return np.where(blast_fraction > 0.5, 1, np.where(blast_fraction < 0.5, 0, tie_label)).astype(
        int
    )


def _balanced_event_order(event_label: np.ndarray, counts: np.ndarray, seed: int) -> np.ndarray:
    """One seeded order of all events; every prefix is as class-balanced as events allow.

    Each class's events are shuffled; the next event comes from the class with fewer
    records so far (ties to earthquake), so at any prefix the classes differ by at most
    the stations of one event. When a class runs out, the other class fills the rest.
    """
    rng = np.random.default_rng(seed)
    queues = [rng.permutation(np.flatnonzero(event_label == c)) for c in (0, 1)]
    taken = [0, 0]  # events consumed per class
    records = [0, 0]  # records consumed per class
    order = np.empty(len(counts), dtype=np.int64)
    for k in range(len(counts)):  # one step per event, not per window: cheap
        open_classes = [c for c in (0, 1) if taken[c] < len(queues[c])]
        c = min(open_classes, key=lambda c: (records[c], c))
        order[k] = queues[c][taken[c]]
        taken[c] += 1
        records[c] += counts[order[k]]
    return order


def labelled_rows(metadata: pd.DataFrame, labels: int | None, seed: int = 0) -> np.ndarray:
    """Training rows of one label budget: the ``labels`` subset, or every train row for None.

    The same rows as ``label_subsets(metadata, sizes, seed)[labels]`` for any ``sizes``
    holding ``labels`` (subsets are prefixes of one seeded event order).
    """
    if labels is None:
        return np.flatnonzero(metadata["split"].to_numpy() == "train")
    return label_subsets(metadata, sizes=(labels,), seed=seed)[labels]
