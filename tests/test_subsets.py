"""Label subsets: nested, class-balanced, whole events, train rows only, sizes met, seeded."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from seisbert.data.subsets import label_subsets

SIZES = (50, 120, 500, None)


def make_metadata(n_events: int = 400, p_blast: float = 0.35, seed: int = 0) -> pd.DataFrame:
    """Events of 1-9 stations, unbalanced classes, split 70/15/15 by event, rows shuffled."""
    rng = np.random.default_rng(seed)
    stations = rng.integers(1, 10, n_events)
    event = np.repeat(np.arange(n_events), stations)
    label = (rng.random(n_events) < p_blast).astype(int)[event]
    split = np.array(["train", "dev", "test"])[np.searchsorted([0.7, 0.85], rng.random(n_events))][
        event
    ]
    metadata = pd.DataFrame({"event_id": [f"E{e}" for e in event], "label": label, "split": split})
    return metadata.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # rows not grouped


@pytest.fixture(scope="module")
def metadata():
    return make_metadata()


@pytest.fixture(scope="module")
def subsets(metadata):
    return label_subsets(metadata, SIZES, seed=0)


def test_nested(subsets):
    for small, large in zip(SIZES, SIZES[1:]):
        assert set(subsets[small]) < set(subsets[large])


def test_all_is_the_whole_train_split(metadata, subsets):
    np.testing.assert_array_equal(subsets[None], np.flatnonzero(metadata["split"] == "train"))


def test_only_train_rows(metadata, subsets):
    for rows in subsets.values():
        assert (metadata["split"].to_numpy()[rows] == "train").all()


def test_whole_events_only(metadata, subsets):
    for size, rows in subsets.items():
        inside = set(metadata["event_id"].to_numpy()[rows])
        rows_of_inside = np.flatnonzero(metadata["event_id"].isin(inside).to_numpy())
        np.testing.assert_array_equal(
            np.sort(rows), rows_of_inside, err_msg=f"size {size} splits an event"
        )


def test_sizes_met_overshooting_by_less_than_the_last_event(metadata, subsets):
    max_stations = metadata.groupby("event_id").size().max()  # 9
    for size in SIZES[:-1]:
        assert size <= len(subsets[size]) < size + max_stations


def test_class_balanced_within_one_event(metadata, subsets):
    """Tolerance: the classes differ by at most one event's stations (here at most 9 records)."""
    max_stations = metadata.groupby("event_id").size().max()
    for size in SIZES[:-1]:
        n_blast = metadata["label"].to_numpy()[subsets[size]].sum()
        n_quake = len(subsets[size]) - n_blast
        assert abs(n_blast - n_quake) <= max_stations, (size, n_quake, n_blast)
    # The unbalanced train split is left as it is for None.
    assert metadata["label"].to_numpy()[subsets[None]].mean() < 0.45


def test_deterministic_by_seed(metadata, subsets):
    again = label_subsets(metadata, SIZES, seed=0)
    other = label_subsets(metadata, SIZES, seed=1)
    for size in SIZES[:-1]:
        np.testing.assert_array_equal(subsets[size], again[size])
        assert set(subsets[size]) != set(other[size])


def test_independent_of_row_order(metadata, subsets):
    shuffled = metadata.sample(frac=1.0, random_state=7)
    again = label_subsets(shuffled.reset_index(drop=True), SIZES, seed=0)
    for size in SIZES:
        ids = sorted(shuffled["event_id"].to_numpy()[again[size]])
        assert ids == sorted(metadata["event_id"].to_numpy()[subsets[size]])


def test_event_class_is_majority_label_then_first_record():
    """a (1,1,0) and c (1,0) are blasts, b (0,0,1) and d (0,1) earthquakes: every
    size-4 subset is one earthquake event plus one blast event."""
    metadata = pd.DataFrame(
        {
            "event_id": ["a", "a", "a", "b", "b", "b", "c", "c", "d", "d"],
            "label": [1, 1, 0, 0, 0, 1, 1, 0, 0, 1],
            "split": ["train"] * 10,
        }
    )
    seen = set()
    for seed in range(12):
        events = frozenset(
            metadata["event_id"].to_numpy()[label_subsets(metadata, [4], seed=seed)[4]]
        )
        assert len(events & {"b", "d"}) == 1 and len(events & {"a", "c"}) == 1, (seed, events)
        seen.add(events)
    assert len(seen) > 1  # the seed does change the draw


def test_one_class_running_out_warns(caplog):
    metadata = make_metadata(n_events=60, p_blast=0.1, seed=3)
    n_train = int((metadata["split"] == "train").sum())
    with caplog.at_level(logging.WARNING, logger="seisbert.data.subsets"):
        rows = label_subsets(metadata, [n_train - 5], seed=0)[n_train - 5]
    assert len(rows) >= n_train - 5
    assert "unbalanced" in caplog.text and "ran out" in caplog.text


@pytest.mark.parametrize(
    "sizes, match",
    [
        ([0], "label subset size 0 must be a positive integer or None"),
        ([2.5], "label subset size 2.5 must be a positive integer or None"),
        ([10**6], "label subset size 1000000 exceeds the .* training records"),
    ],
)
def test_bad_sizes(metadata, sizes, match):
    with pytest.raises(ValueError, match=match):
        label_subsets(metadata, sizes, seed=0)


def test_no_train_rows():
    metadata = pd.DataFrame({"event_id": ["a"], "label": [0], "split": ["test"]})
    with pytest.raises(ValueError, match="no rows with split == 'train'"):
        label_subsets(metadata, [1])
