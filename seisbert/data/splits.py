"""Train/dev/test splits drawn by event, so no event leaks between splits.

All stations of an event land in the same split (seisbench's split names).
"""

from __future__ import annotations

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


def split_by_event(event_ids, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """Split name per record; events are shuffled with ``seed`` and cut by ``fractions``.

    The split of an event depends only on the set of event ids and the seed, never on
    record order, so a rejected record elsewhere does not move other events.
    """
    event_ids = np.asarray(event_ids).astype(str)
    events = np.unique(event_ids)  # sorted: independent of record order
    order = np.random.default_rng(seed).permutation(len(events))
    bounds = np.round(np.cumsum(fractions)[:-1] * len(events)).astype(int)
    event_split = np.empty(len(events), dtype=object)
    for name, idx in zip(SPLIT_NAMES, np.split(order, bounds)):
        event_split[idx] = name
    return event_split[np.searchsorted(events, event_ids)].astype(str)
