"""Token sequences for the encoder: layouts, source-linking pairs and the DataModule.

Layouts: ids as ``seisbert.data.vocab`` states them (K spectral tokens, then the
specials). A record is ``[CLS] t1..tT [SEP]``; a source-linking pair is
``[CLS] a1..a(T/2) [SEP] b(T/2+1)..bT [SEP]`` with segment 1 on the second part.
"""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from seisbert.data.vocab import Specials

log = logging.getLogger(__name__)


def record_input(tokens: np.ndarray, sp: Specials) -> tuple[np.ndarray, np.ndarray]:
    """``(T,)`` tokens -> ids ``[CLS] t [SEP]`` (T+2,) and zero segments."""
    ids = np.concatenate([[sp.cls], tokens, [sp.sep]]).astype(np.int64)
    return ids, np.zeros_like(ids)


def pair_input(a: np.ndarray, b: np.ndarray, sp: Specials) -> tuple[np.ndarray, np.ndarray]:
    """First half ``a`` and second half ``b`` -> ``[CLS] a [SEP] b [SEP]`` and segments."""
    ids = np.concatenate([[sp.cls], a, [sp.sep], b, [sp.sep]]).astype(np.int64)
    seg = np.concatenate([np.zeros(len(a) + 2), np.ones(len(b) + 1)]).astype(np.int64)
    return ids, seg


def with_specials(windows: np.ndarray, cut: int | None = None) -> np.ndarray:
    """(T, F) windows -> (T+2, F) aligned with ``[CLS] t [SEP]``, or (T+3, F) with a [SEP]
    after the first ``cut`` windows (a source-linking pair); zero rows at the specials."""
    z = np.zeros((1, windows.shape[1]), np.float32)
    parts = [z, windows, z] if cut is None else [z, windows[:cut], z, windows[cut:], z]
    return np.concatenate(parts).astype(np.float32, copy=False)


def step_mode_of(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """Most frequent id at each time step (T,) of ``tokens`` (n, T), ids in 0..K-1."""
    tokens = np.asarray(tokens).astype(np.int64)
    T = tokens.shape[1]
    flat = (np.arange(T) * vocab_size + tokens).ravel()  # one bincount over (time step, id) pairs
    return np.bincount(flat, minlength=T * vocab_size).reshape(T, vocab_size).argmax(1)  # (T,)


def window_stats(features: np.ndarray, rows: np.ndarray) -> dict:
    """Per-bin mean and std (F,) and per-time-step mean (T, F) of the windows of ``rows``.

    Called with the training rows only: random-projection targets and the step-mean
    baseline must never see dev or test windows.
    """
    x = np.asarray(features[np.sort(rows)], dtype=np.float64)  # (n, T, F)
    flat = x.reshape(-1, x.shape[-1])
    return {
        "mean": flat.mean(0).tolist(),
        "std": np.maximum(flat.std(0), 1e-6).tolist(),
        "step_mean": x.mean(0).tolist(),
    }


# Source-linking labels. 2-way: same event (other station) vs other event.
# 3-way adds "same record" (the true second half) as its own class.
SL_LABELS = {
    2: {"same_event": 0, "other_event": 1},
    3: {"same_record": 0, "same_event": 1, "other_event": 2},
}


class RecordDataset(Dataset):
    """One ``[CLS] t [SEP]`` sequence per record, with its class label and row index."""

    def __init__(
        self,
        tokens: np.ndarray,
        labels: np.ndarray,
        rows: np.ndarray,
        sp: Specials,
        features: np.ndarray | None = None,
    ):
        self.tokens, self.labels, self.rows, self.sp = tokens, labels, rows, sp
        self.features = features

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        row = self.rows[i]
        ids, seg = record_input(np.asarray(self.tokens[row]), self.sp)
        item = {
            "ids": torch.from_numpy(ids),
            "segments": torch.from_numpy(seg),
            "label": torch.tensor(int(self.labels[row])),
            "row": torch.tensor(int(row)),
        }
        if self.features is not None:
            item["psd"] = torch.from_numpy(with_specials(np.asarray(self.features[row])))
        return item


class PairDataset(Dataset):
    """Source-linking pairs: anchor record's first half + a partner's second half.

    Positives take another station of the same event, never the same station; anchors
    from events seen at one station only become negatives, never false positives. The
    pairing of item ``i`` depends on (seed, epoch, i) only, so validation is fixed and
    training pairs change every epoch.
    """

    def __init__(
        self,
        tokens,
        event_ids,
        station_ids,
        rows,
        sp: Specials,
        n_classes: int = 2,
        seed: int = 0,
        fixed: bool = False,
        features: np.ndarray | None = None,
    ):
        self.tokens, self.rows, self.sp, self.n_classes = tokens, rows, sp, n_classes
        self.features = features
        self.seed, self.fixed, self.epoch = seed, fixed, 0
        ev = np.asarray(event_ids)[rows]
        self.station = np.asarray(station_ids)[rows]
        self.event_codes = np.unique(ev, return_inverse=True)[1]
        order = np.argsort(self.event_codes, kind="stable")
        self.by_event = np.split(order, np.flatnonzero(np.diff(self.event_codes[order])) + 1)

    def __len__(self):
        return len(self.rows)

    def partner(self, i: int, rng: np.random.Generator) -> tuple[int, str]:
        """Index (into ``rows``) of the second half's record and the pair's kind."""
        want = rng.random()
        if self.n_classes == 3 and want < 1 / 3:
            return i, "same_record"
        mates = self.by_event[self.event_codes[i]]
        mates = mates[self.station[mates] != self.station[i]]
        p_same = 0.5 if self.n_classes == 2 else 2 / 3
        if len(mates) and want < p_same:
            return int(rng.choice(mates)), "same_event"
        j = int(rng.integers(len(self.rows)))
        while self.event_codes[j] == self.event_codes[i]:  # guaranteed >1 event by the caller
            j = int(rng.integers(len(self.rows)))
        return j, "other_event"

    def __getitem__(self, item):
        # (i, epoch) from EpochSampler: the epoch travels with the index, so DataLoader
        # workers (which hold a copy of this dataset) pair as the main process would
        i, epoch = item if isinstance(item, tuple) else (item, self.epoch)
        rng = np.random.default_rng([self.seed, 0 if self.fixed else epoch, i])
        j, kind = self.partner(i, rng)
        a = np.asarray(self.tokens[self.rows[i]])
        b = np.asarray(self.tokens[self.rows[j]])
        half = len(a) // 2
        ids, seg = pair_input(a[:half], b[half:], self.sp)
        item = {
            "ids": torch.from_numpy(ids),
            "segments": torch.from_numpy(seg),
            "sl_label": torch.tensor(SL_LABELS[self.n_classes][kind]),
            "row": torch.tensor(int(self.rows[i])),
            "partner_row": torch.tensor(int(self.rows[j])),
        }
        if self.features is not None:
            fa, fb = (
                np.asarray(self.features[self.rows[i]]),
                np.asarray(self.features[self.rows[j]]),
            )
            item["psd"] = torch.from_numpy(
                with_specials(np.concatenate([fa[:half], fb[half:]]), half)
            )
        return item


class EpochSampler(DistributedSampler):
    """Training order from (seed, epoch) alone, sharded across ranks (DistributedSampler).

    Used on one process too, so that a run resumed at epoch e sees the order an
    uninterrupted run sees at epoch e (a RandomSampler's generator would restart). Lightning
    calls ``set_epoch`` before every epoch and leaves a DistributedSampler in place under
    DDP: each rank serves its own ceil(n / world_size) records, the last few repeated to
    even the ranks out. ``with_epoch`` yields ``(index, epoch)`` for datasets that change
    per epoch (source-linking pairs).
    """

    def __init__(
        self, dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0, with_epoch: bool = False
    ):
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False
        )
        self.with_epoch = with_epoch

    def __iter__(self):
        indices = super().__iter__()
        return ((int(i), self.epoch) for i in indices) if self.with_epoch else indices


class TokenDataModule(L.LightningDataModule):
    """Serves records (MLM, fine-tuning) or source-linking pairs from a tokens artifact.

    ``train_rows`` restricts training to a labelled subset (label-limited fine-tuning).
    Dev and test are always the full splits. ``features`` (N, T, F), given only when the
    model reads or predicts windows, adds ``psd`` to every item.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        metadata,
        vocab_size: int,
        batch_size: int = 64,
        pairs: bool = False,
        sl_classes: int = 2,
        seed: int = 0,
        num_workers: int = 0,
        train_rows: np.ndarray | None = None,
        features: np.ndarray | None = None,
    ):
        super().__init__()
        if features is not None and features.shape[:2] != tokens.shape:
            raise ValueError(
                f"features {features.shape} do not match tokens {tokens.shape} row for row"
            )
        self.tokens, self.meta, self.sp, self.features = (
            tokens,
            metadata,
            Specials(vocab_size),
            features,
        )
        self.batch_size, self.pairs, self.sl_classes = batch_size, pairs, sl_classes
        self.seed, self.num_workers, self.train_rows = seed, num_workers, train_rows
        split = metadata["split"].to_numpy()
        self.rows = {s: np.flatnonzero(split == s) for s in ("train", "dev", "test")}
        if train_rows is not None:
            if not np.isin(train_rows, self.rows["train"]).all():
                raise ValueError("train_rows must come from the train split only")
            self.rows["train"] = np.sort(np.asarray(train_rows))
        self.datasets = {s: self._dataset(s) for s in self.rows}

    def _dataset(self, split: str) -> Dataset:
        rows = self.rows[split]
        if not self.pairs:
            return RecordDataset(
                self.tokens, self.meta["label"].to_numpy(), rows, self.sp, self.features
            )
        if self.meta["event_id"].iloc[rows].nunique() < 2:
            raise ValueError(f"source linking needs at least two events in the {split} split")
        return PairDataset(
            self.tokens,
            self.meta["event_id"].to_numpy(),
            self.meta["station_id"].to_numpy(),
            rows,
            self.sp,
            self.sl_classes,
            self.seed,
            fixed=split != "train",
            features=self.features,
        )

    def step_mode(self) -> np.ndarray:
        """Most frequent training token at each time step (T,): the paper's second baseline."""
        return step_mode_of(np.asarray(self.tokens)[self.rows["train"]], self.sp.vocab_size)

    def window_stats(self) -> dict:
        """:func:`window_stats` of the training split's windows (needs ``features``)."""
        return window_stats(self.features, self.rows["train"])

    def set_epoch(self, epoch: int) -> None:
        ds = self.datasets["train"]
        if isinstance(ds, PairDataset):
            ds.epoch = epoch

    def _loader(self, split: str, sampler=None) -> DataLoader:
        g = torch.Generator().manual_seed(self.seed)  # workers' base seed, without the global RNG
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            generator=g,
            drop_last=False,
            persistent_workers=self.num_workers > 0,
        )

    def replicas(self) -> tuple[int, int]:
        """(world size, global rank) of the attached trainer; (1, 0) without one."""
        trainer = self.trainer
        return (1, 0) if trainer is None else (trainer.world_size, trainer.global_rank)

    def train_dataloader(self):
        world, rank = self.replicas()
        sampler = EpochSampler(
            self.datasets["train"], world, rank, self.seed, with_epoch=self.pairs
        )
        return self._loader("train", sampler)

    def val_dataloader(self):
        return self._loader("dev")  # under DDP Lightning shards it with a DistributedSampler

    def test_dataloader(self):
        return self._loader("test")
