"""Train/dev/test splits drawn by event, so no event leaks between splits.

All stations of an event land in the same split (seisbench's split names). The split of
an event is a function of its id and the seed only, so it stays put when events are added
or rejected.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from seisbert.config import check_range

SPLIT_NAMES = ("train", "dev", "test")


@dataclass
class SplitConfig:
    fractions: list = field(default_factory=lambda: [0.8, 0.1, 0.1])  # train, dev, test (of events)
    seed: int = 0
    use_source_split: bool = False  # keep a `split` column the source already has (seisbench data)

    def __post_init__(self):
        if len(self.fractions) != 3:
            raise ValueError(f"split.fractions must list train, dev, test; got {self.fractions}")
        for name, f in zip(SPLIT_NAMES, self.fractions):
            check_range(f"split.fractions[{name}]", f, 0.0, 1.0)
        if abs(sum(self.fractions) - 1.0) > 1e-6:
            raise ValueError(f"split.fractions={list(self.fractions)} must sum to 1")


def event_position(event_ids, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per event id, from a seeded SHA-256 of the id alone."""
    key = f"{seed}:".encode()
    return (
        np.array(
            [
                int.from_bytes(hashlib.sha256(key + str(e).encode()).digest()[:8], "big")
                for e in event_ids
            ],
            dtype=np.float64,
        )
        / 2.0**64
    )


def split_by_event(event_ids, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """Split name per record: each event's split follows from a seeded hash of its id.

    An event falls in the split whose share of [0, 1) holds its hash position, so its
    split never depends on which other events exist: adding or rejecting events moves no
    other event. The shares hold on average (binomial spread: about 1 percentage point
    for 1000 events). A split with a nonzero share that gets no event (a few dozen events
    at most) takes the event nearest its share, so no split is empty.
    """
    event_ids = np.asarray(event_ids).astype(str)
    events, inverse = np.unique(event_ids, return_inverse=True)
    u = event_position(events, seed)
    edges = np.cumsum(fractions)[:-1]
    which = np.searchsorted(edges, u, side="right")
    _fill_empty_splits(which, u, np.asarray(fractions, dtype=float))
    return np.asarray(SPLIT_NAMES)[which][inverse.reshape(-1)]


def _fill_empty_splits(which: np.ndarray, u: np.ndarray, fractions: np.ndarray) -> None:
    """Give each empty split with a nonzero share the nearest event of a split holding two or
    more."""
    centres = np.cumsum(fractions) - fractions / 2
    for k in np.flatnonzero((fractions > 0) & (np.bincount(which, minlength=len(fractions)) == 0)):
        counts = np.bincount(which, minlength=len(fractions))
        donors = np.flatnonzero(counts[which] > 1)
        if len(donors):
            which[donors[np.argmin(np.abs(u[donors] - centres[k]))]] = k
