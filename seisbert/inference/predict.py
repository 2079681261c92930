"""``seisbert predict``: a bundle's classifier applied to any record source.

The records are featurized with the bundle's feature config and tokenized with the
bundle's centroids (nearest centroid by FAISS, as the tokenizer stage assigns), so a
record gives the same features, tokens and probability here as in the fine-tuning run
(tests/test_predict.py). Nothing is fitted and no split is drawn. Records that cannot be
used are listed with their reason; the rest are classified. Records are featurized, tokenized
and classified ``predict.chunk_records`` at a time, so memory holds one chunk of waveforms,
features and tokens however many records a source delivers.
"""

from __future__ import annotations

import logging
import mmap
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from seisbert.config import check_range
from seisbert.data.records import RecordSet, empty_rejected
from seisbert.data.sequences import Specials
from seisbert.pipeline import feature_rejections, featurize_records

log = logging.getLogger(__name__)

# Metadata columns copied into predictions.csv when the source has them.
ID_COLUMNS = (
    "event_id",
    "event_uri",
    "station_id",
    "trace_start_time",
    "trace_name",
    "source_type",
    "label",
)


@dataclass
class PredictConfig:
    batch_size: int = 512  # records per forward pass
    chunk_records: int = 2048  # records featurized, tokenized and classified at a time
    threshold: float = 0.5  # decide blast when the (prior-shifted) probability >= this
    prior_blast: float | None = None  # blast share expected in the new data; None keeps the model's
    progress: bool | None = None  # None: a bar only when stderr is a terminal (not in a log file)
    reliability_bins: int = 10  # evaluate: probability bins of the reliability diagram

    def __post_init__(self):
        check_range("predict.batch_size", self.batch_size, 1)
        check_range("predict.chunk_records", self.chunk_records, 1)
        check_range("predict.threshold", self.threshold, 0.0, 1.0)
        if self.prior_blast is not None:
            check_range("predict.prior_blast", self.prior_blast, 1e-6, 1 - 1e-6)
        check_range("predict.reliability_bins", self.reliability_bins, 2)

    @property
    def show_progress(self) -> bool:
        return sys.stderr.isatty() if self.progress is None else self.progress


@dataclass
class Scored:
    """Per kept record its metadata row and P(blast) (N,); the rejected records with reasons."""

    metadata: pd.DataFrame
    prob_blast: np.ndarray
    rejected: pd.DataFrame


@dataclass
class Chunk:
    """Rows ``start .. start + len(reasons)`` of a record set, scored: every row's rejection
    reason ("" when kept), and the kept rows' features (n, T, F), tokens (n, T), P(blast) (n,)."""

    start: int
    reasons: np.ndarray
    features: np.ndarray
    tokens: np.ndarray
    prob_blast: np.ndarray


def prior_shift(prob: np.ndarray, train_prior: float, new_prior: float) -> np.ndarray:
    """Bayes' rule for a new class prior: posterior odds scale by the ratio of prior odds.

    p' / (1 - p') = p / (1 - p) * [q / (1 - q)] / [pi / (1 - pi)], with pi the prior the
    model learned (``train_prior``) and q the new one (Saerens et al. 2002).
    """
    p = np.clip(np.asarray(prob, np.float64), 1e-12, 1 - 1e-12)
    log_odds = (
        np.log(p / (1 - p))
        + np.log(new_prior / (1 - new_prior))
        - np.log(train_prior / (1 - train_prior))
    )
    return 1.0 / (1.0 + np.exp(-log_odds))


def check_source(bundle, source) -> None:
    """Before any reading: the source must deliver records the bundle's features can use."""
    fcfg = bundle.feature_config()
    problems = []
    rate, channels = getattr(source, "sampling_rate_hz", None), getattr(source, "channels", None)
    if rate is not None and abs(rate - fcfg.sampling_rate_hz) > 1e-9:
        problems.append(
            f"data.sampling_rate_hz={rate:g} but the bundle's features need "
            f"{fcfg.sampling_rate_hz:g} Hz records"
        )
    if channels is not None and channels != fcfg.channels:
        problems.append(
            f"data.channels={channels!r} but the bundle's features use {fcfg.channels!r}"
        )
    for key, need in (("pre_s", fcfg.pre_s), ("post_s", fcfg.post_s)):
        have = getattr(source, key, None)
        if have is not None and have < need:
            problems.append(
                f"data.{key}={have:g} is shorter than the bundle's features.{key}={need:g}"
            )
    if problems:
        raise ValueError(f"data does not fit bundle {bundle.path}: " + "; ".join(problems))


def waveform_rows(waveforms: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``waveforms[start:stop]`` in memory. A memory-mapped array's rows are read from its file:
    pages read through the map stay resident, so the process would grow by every chunk."""
    mapped_file = isinstance(waveforms, np.memmap) and isinstance(waveforms.base, mmap.mmap)
    if not (mapped_file and waveforms.flags.c_contiguous):  # a view's offset is its parent's
        return np.asarray(waveforms[start:stop])
    row_shape, stop = waveforms.shape[1:], min(stop, len(waveforms))
    row_items = int(np.prod(row_shape))
    with open(waveforms.filename, "rb") as f:
        f.seek(waveforms.offset + start * row_items * waveforms.dtype.itemsize)
        rows = np.fromfile(f, waveforms.dtype, (stop - start) * row_items)
    return rows.reshape(stop - start, *row_shape)


def tokenize(tokenizer, features: np.ndarray) -> np.ndarray:
    """Tokens (N, T) int16 by nearest training centroid."""
    if len(features) == 0:
        return np.zeros(features.shape[:2], np.int16)
    return tokenizer.tokenize(np.ascontiguousarray(features))


def tokens_of(bundle, features: np.ndarray) -> np.ndarray:
    """Tokens (N, T) int16 by the bundle's centroids."""
    return tokenize(bundle.tokenizer(), features)


def probabilities(
    module, tokens: np.ndarray, batch_size: int, progress: bool, features: np.ndarray | None = None
) -> np.ndarray:
    """P(blast) (N,) for token rows (N, T): ``[CLS] t [SEP]`` through the module, batched.

    A module that embeds PSD windows (``model.input`` psd/both) also gets ``features``
    (N, T, F), with zero windows at [CLS] and [SEP] as in training.
    """
    import torch

    sp = Specials(module.cfg.vocab_size)
    n, T = tokens.shape
    ids = np.empty((n, T + 2), np.int64)  # (N, T+2): [CLS] t1..tT [SEP]
    ids[:, 0], ids[:, 1:-1], ids[:, -1] = sp.cls, tokens, sp.sep
    reads_psd = getattr(module.cfg, "input", "tokens") != "tokens"
    out = np.empty(n, np.float32)
    starts = tqdm(range(0, n, batch_size), desc="classify", unit="batch", disable=not progress)
    with torch.inference_mode():
        for i in starts:
            x = torch.from_numpy(ids[i : i + batch_size])
            psd = None
            if reads_psd:
                w = np.asarray(features[i : i + batch_size], np.float32)
                psd = torch.from_numpy(np.pad(w, ((0, 0), (1, 1), (0, 0))))  # (B, T+2, F)
            logits = (
                module(x, torch.zeros_like(x), psd) if reads_psd else module(x, torch.zeros_like(x))
            )
            out[i : i + batch_size] = logits.float().softmax(-1)[:, 1].numpy()
    return out


def score_chunks(bundle, records: RecordSet, pcfg: PredictConfig) -> Iterator[Chunk]:
    """The records featurized with the bundle's config, tokenized and classified
    ``pcfg.chunk_records`` at a time: memory holds one chunk, whatever the count."""
    fcfg, tokenizer, module = bundle.feature_config(), bundle.tokenizer(), bundle.module()
    n, step = len(records), pcfg.chunk_records
    starts = tqdm(range(0, n, step), desc="predict", unit="chunk", disable=not pcfg.show_progress)
    for start in starts:
        stop = min(start + step, n)
        waves, meta = (
            waveform_rows(records.waveforms, start, stop),
            records.metadata.iloc[start:stop],
        )
        part = RecordSet(waves, meta, records.sampling_rate_hz, records.channels)
        feats, reasons = featurize_records(part, fcfg, progress=False)
        feats = feats[reasons == ""]
        tokens = tokenize(tokenizer, feats)
        prob = probabilities(module, tokens, pcfg.batch_size, False, feats)
        yield Chunk(start, reasons, feats, tokens, prob)


def score(bundle, records: RecordSet, pcfg: PredictConfig) -> Scored:
    """P(blast) of every usable record, the rest listed with reasons. Each chunk's features
    and tokens are dropped once it is classified (``score_chunks`` yields them)."""
    reasons, probs = [np.empty(0, object)], [np.zeros(0, np.float32)]
    for chunk in score_chunks(bundle, records, pcfg):
        reasons.append(chunk.reasons)
        probs.append(chunk.prob_blast)
    reasons = np.concatenate(reasons)
    meta = records.metadata.reset_index(drop=True).copy()
    meta["record_index"] = np.arange(len(meta))
    rejected = pd.concat([records.rejected, feature_rejections(meta, reasons)], ignore_index=True)
    keep = reasons == ""
    return Scored(meta[keep].reset_index(drop=True), np.concatenate(probs), rejected)


def prediction_table(scored: Scored, bundle, pcfg: PredictConfig) -> pd.DataFrame:
    """predictions.csv: per record its ids, P(blast) (and prior-shifted), the decided class."""
    meta = scored.metadata
    table = meta[[c for c in ("record_index", *ID_COLUMNS) if c in meta.columns]].copy()
    table["prob_blast"] = scored.prob_blast
    decide = table["prob_blast"].to_numpy()
    if pcfg.prior_blast is not None:
        train_prior = bundle.info["training"]["train_prior_blast"]
        decide = prior_shift(decide, train_prior, pcfg.prior_blast)
        table["prob_blast_shifted"] = decide
    names = np.array(bundle.class_names)
    table["predicted"] = names[(decide >= pcfg.threshold).astype(int)]
    return table


def event_table(predictions: pd.DataFrame, pcfg: PredictConfig, class_names) -> pd.DataFrame:
    """events.csv: per event the mean probability over its records, station count, decision."""
    col = "prob_blast_shifted" if "prob_blast_shifted" in predictions else "prob_blast"
    groups = predictions.groupby("event_id", sort=False)
    events = pd.DataFrame(
        {
            "n_records": groups.size(),
            "n_stations": groups["station_id"].nunique(),
            "mean_prob_blast": groups[col].mean(),
        }
    ).reset_index()
    if "event_uri" in predictions:
        events.insert(1, "event_uri", groups["event_uri"].first().to_numpy())
    names = np.array(list(class_names))
    events["decision"] = names[(events["mean_prob_blast"].to_numpy() >= pcfg.threshold).astype(int)]
    return events


def write_predictions(
    out: Path, predictions: pd.DataFrame, events: pd.DataFrame, rejected: pd.DataFrame
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(out / "predictions.csv", index=False)
    events.to_csv(out / "events.csv", index=False)
    (rejected if len(rejected) else empty_rejected()).to_csv(out / "rejected.csv", index=False)
    counts = rejected["reason"].value_counts().to_dict() if len(rejected) else {}
    log.info(
        "classified %d records of %d events; rejected %d %s; wrote %s",
        len(predictions),
        len(events),
        len(rejected),
        counts,
        out,
    )
