"""Event splits never share an event; artifacts are written atomically."""

import numpy as np
import pytest

from seisbert.artifacts.cache import atomic_artifact, config_hash, is_complete
from seisbert.data.splits import split_by_event


def test_no_event_crosses_splits_and_fractions_hold():
    rng = np.random.default_rng(0)
    events = np.repeat([f"ev{i:04d}" for i in range(500)], rng.integers(1, 7, 500))
    split = split_by_event(events, (0.8, 0.1, 0.1), seed=3)
    per_event = {}
    for e, s in zip(events, split):
        assert per_event.setdefault(e, s) == s
    counts = {s: sum(v == s for v in per_event.values()) for s in ("train", "dev", "test")}
    # per-event hashing holds the fractions on average: binomial sd at 500 events is ~13 / ~7
    assert abs(counts["train"] - 400) <= 30 and all(
        abs(counts[s] - 50) <= 20 for s in ("dev", "test")
    )


def test_removing_or_adding_events_moves_no_other_event():
    events = np.array([f"2024p{i:05d}" for i in range(341)])
    before = dict(zip(events, split_by_event(events, seed=0)))
    fewer = np.delete(events, 17)  # a newly rejected file takes its event out
    after = dict(zip(fewer, split_by_event(fewer, seed=0)))
    more = np.append(events, ["new1", "new2"])
    added = dict(zip(more, split_by_event(more, seed=0)))
    assert all(after[e] == before[e] for e in fewer)
    assert all(added[e] == before[e] for e in events)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_fractions_hold_on_a_thousand_events(seed):
    events = np.array([f"ev{i}" for i in range(1000)])
    split = split_by_event(events, (0.7, 0.2, 0.1), seed=seed)
    shares = {s: float(np.mean(split == s)) for s in ("train", "dev", "test")}
    # binomial sd at n=1000: 1.4 / 1.3 / 0.9 percentage points; 4 sd bounds
    assert abs(shares["train"] - 0.7) < 0.06 and abs(shares["dev"] - 0.2) < 0.052
    assert abs(shares["test"] - 0.1) < 0.038


def test_few_events_leave_no_split_with_a_share_empty():
    for n in range(3, 30):
        split = split_by_event([f"e{i}" for i in range(n)], (0.8, 0.1, 0.1), seed=0)
        assert set(split) == {"train", "dev", "test"}, n
    assert set(split_by_event([f"e{i}" for i in range(5)], (0.9, 0.1, 0.0))) == {"train", "dev"}


def test_split_is_seeded_and_independent_of_record_order():
    events = np.array([f"e{i % 37}" for i in range(200)])
    a = split_by_event(events, seed=1)
    perm = np.random.default_rng(0).permutation(200)
    b = split_by_event(events[perm], seed=1)
    assert np.array_equal(a[perm], b)
    assert not np.array_equal(a, split_by_event(events, seed=2))


def test_config_hash_is_order_independent_and_sensitive():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_killed_write_leaves_no_artifact(tmp_path):
    target = tmp_path / "features" / "abc"
    with pytest.raises(RuntimeError):
        with atomic_artifact(target, {"x": 1}) as tmp:
            (tmp / "features.npy").write_bytes(b"half")
            raise RuntimeError("killed")
    assert not target.exists() and not list((tmp_path / "features").iterdir())
    with atomic_artifact(target, {"x": 1}) as tmp:
        (tmp / "features.npy").write_bytes(b"whole")
    assert is_complete(target) and (target / "features.npy").read_bytes() == b"whole"
