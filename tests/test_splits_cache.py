"""Event splits never share an event; artifacts are written atomically."""

import numpy as np
import pytest

from seisbert.cache import atomic_artifact, config_hash, is_complete
from seisbert.data.splits import split_by_event


def test_no_event_crosses_splits_and_fractions_hold():
    rng = np.random.default_rng(0)
    events = np.repeat([f"ev{i:04d}" for i in range(500)], rng.integers(1, 7, 500))
    split = split_by_event(events, (0.8, 0.1, 0.1), seed=3)
    per_event = {}
    for e, s in zip(events, split):
        assert per_event.setdefault(e, s) == s
    counts = {s: sum(v == s for v in per_event.values()) for s in ("train", "dev", "test")}
    assert counts == {"train": 400, "dev": 50, "test": 50}


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
