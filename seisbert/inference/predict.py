"""``seisbert predict``: a bundle's classifier applied to any record source.

The records are featurized with the bundle's feature config and tokenized with the
bundle's centroids (nearest centroid by FAISS, as the tokenizer stage assigns), so a
record gives the same features, tokens and probability here as in the fine-tuning run
(tests/test_predict.py). Nothing is fitted and no split is drawn. Records that cannot be
used are listed with their reason; the rest are classified.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from seisbert.config import check_range
from seisbert.data.records import RecordSet, empty_rejected

log = logging.getLogger(__name__)

# Metadata columns copied into predictions.csv when the source has them.
ID_COLUMNS = ("event_id", "event_uri", "station_id", "trace_start_time", "trace_name",
              "source_type", "label")


@dataclass
class PredictConfig:
    batch_size: int = 512  # records per forward pass
    threshold: float = 0.5  # decide blast when the (prior-shifted) probability >= this
    prior_blast: float | None = None  # blast share expected in the new data; None keeps the model's
    progress: bool | None = None  # None: a bar only when stderr is a terminal (not in a log file)
    reliability_bins: int = 10  # evaluate: probability bins of the reliability diagram

    def __post_init__(self):
        check_range("predict.batch_size", self.batch_size, 1)
        check_range("predict.threshold", self.threshold, 0.0, 1.0)
        if self.prior_blast is not None:
            check_range("predict.prior_blast", self.prior_blast, 1e-6, 1 - 1e-6)
        check_range("predict.reliability_bins", self.reliability_bins, 2)

    @property
    def show_progress(self) -> bool:
        return sys.stderr.isatty() if self.progress is None else self.progress


@dataclass
class Scored:
    """Per kept record: its metadata row, features (N, T, F), tokens (N, T), P(blast) (N,)."""

    metadata: pd.DataFrame
    features: np.ndarray
    tokens: np.ndarray
    prob_blast: np.ndarray
    rejected: pd.DataFrame


def prior_shift(prob: np.ndarray, train_prior: float, new_prior: float) -> np.ndarray:
    """Bayes' rule for a new class prior: posterior odds scale by the ratio of prior odds.

    p' / (1 - p') = p / (1 - p) * [q / (1 - q)] / [pi / (1 - pi)], with pi the prior the
    model learned (``train_prior``) and q the new one (Saerens et al. 2002).
    """
    p = np.clip(np.asarray(prob, np.float64), 1e-12, 1 - 1e-12)
    log_odds = np.log(p / (1 - p)) + np.log(new_prior / (1 - new_prior)) - np.log(train_prior / (1 - train_prior))
    return 1.0 / (1.0 + np.exp(-log_odds))


def check_source(bundle, source) -> None:
    """Before any reading: the source must deliver records the bundle's features can use."""
    fcfg = bundle.feature_config()
    problems = []
    rate, channels = getattr(source, "sampling_rate_hz", None), getattr(source, "channels", None)
    if rate is not None and abs(rate - fcfg.sampling_rate_hz) > 1e-9:
        problems.append(f"data.sampling_rate_hz={rate:g} but the bundle's features need "
                        f"{fcfg.sampling_rate_hz:g} Hz records")
    if channels is not None and channels != fcfg.channels:
        problems.append(f"data.channels={channels!r} but the bundle's features use {fcfg.channels!r}")
    for key, need in (("pre_s", fcfg.pre_s), ("post_s", fcfg.post_s)):
        have = getattr(source, key, None)
        if have is not None and have < need:
            problems.append(f"data.{key}={have:g} is shorter than the bundle's features.{key}={need:g}")
    if problems:
        raise ValueError(f"data does not fit bundle {bundle.path}: " + "; ".join(problems))


def featurize(bundle, records: RecordSet, progress: bool) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Features (n_kept, T, F) with the bundle's config, the kept metadata and all rejections."""
    from seisbert.pipeline import feature_rejections, featurize_records

    feats, reasons = featurize_records(records, bundle.feature_config(), progress)
    meta = records.metadata.reset_index(drop=True).copy()
    meta["record_index"] = np.arange(len(meta))
    rejected = pd.concat([records.rejected, feature_rejections(meta, reasons)], ignore_index=True)
    keep = reasons == ""
    return feats[keep], meta[keep].reset_index(drop=True), rejected


def tokens_of(bundle, features: np.ndarray) -> np.ndarray:
    """Tokens (N, T) int16 by nearest training centroid."""
    if len(features) == 0:
        return np.zeros(features.shape[:2], np.int16)
    return bundle.tokenizer().tokenize(np.ascontiguousarray(features))


def probabilities(module, tokens: np.ndarray, batch_size: int, progress: bool,
                  features: np.ndarray | None = None) -> np.ndarray:
    """P(blast) (N,) for token rows (N, T): ``[CLS] t [SEP]`` through the module, batched.

    A module that embeds PSD windows (``model.input`` psd/both) also gets ``features``
    (N, T, F), with zero windows at [CLS] and [SEP] as in training.
    """
    import torch

    from seisbert.data.sequences import Specials

    sp = Specials(module.cfg.vocab_size)
    n, T = tokens.shape
    ids = np.empty((n, T + 2), np.int64)  # (N, T+2): [CLS] t1..tT [SEP]
    ids[:, 0], ids[:, 1:-1], ids[:, -1] = sp.cls, tokens, sp.sep
    reads_psd = getattr(module.cfg, "input", "tokens") != "tokens"
    out = np.empty(n, np.float32)
    starts = tqdm(range(0, n, batch_size), desc="classify", unit="batch", disable=not progress)
    with torch.inference_mode():
        for i in starts:
            x = torch.from_numpy(ids[i:i + batch_size])
            psd = None
            if reads_psd:
                w = np.asarray(features[i:i + batch_size], np.float32)
                psd = torch.from_numpy(np.pad(w, ((0, 0), (1, 1), (0, 0))))  # (B, T+2, F)
            logits = module(x, torch.zeros_like(x), psd) if reads_psd else module(x, torch.zeros_like(x))
            out[i:i + batch_size] = logits.float().softmax(-1)[:, 1].numpy()
    return out


def score(bundle, records: RecordSet, pcfg: PredictConfig) -> Scored:
    """Features, tokens and P(blast) of every usable record; the rest listed with reasons."""
    progress = pcfg.show_progress
    feats, meta, rejected = featurize(bundle, records, progress)
    tokens = tokens_of(bundle, feats)
    prob = probabilities(bundle.module(), tokens, pcfg.batch_size, progress, feats) if len(tokens) \
        else np.zeros(0, np.float32)
    return Scored(meta, feats, tokens, prob, rejected)


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
    events = pd.DataFrame({"n_records": groups.size(), "n_stations": groups["station_id"].nunique(),
                           "mean_prob_blast": groups[col].mean()}).reset_index()
    if "event_uri" in predictions:
        events.insert(1, "event_uri", groups["event_uri"].first().to_numpy())
    names = np.array(list(class_names))
    events["decision"] = names[(events["mean_prob_blast"].to_numpy() >= pcfg.threshold).astype(int)]
    return events


def write_predictions(out: Path, predictions: pd.DataFrame, events: pd.DataFrame,
                      rejected: pd.DataFrame) -> None:
    out.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(out / "predictions.csv", index=False)
    events.to_csv(out / "events.csv", index=False)
    (rejected if len(rejected) else empty_rejected()).to_csv(out / "rejected.csv", index=False)
    counts = rejected["reason"].value_counts().to_dict() if len(rejected) else {}
    log.info("classified %d records of %d events; rejected %d %s; wrote %s",
             len(predictions), len(events), len(rejected), counts, out)

