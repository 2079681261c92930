"""The cached stages: records -> features -> tokens.

Each stage's artifact lives in ``<paths.cache_dir>/<stage>/<hash>/`` where the hash
covers the config of the stage and of every stage upstream. A stage that
finds its artifact whole (``seisbert.artifacts.cache.verify_artifact`` at the level
``paths.verify``) reuses it; otherwise it builds it atomically. ``prepare`` resolves each
stage once and hands the folders downstream, so no stage looks its upstream up again.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, open_dict
from tqdm.auto import tqdm

from seisbert.artifacts.arrays import NpyAppender, copy_rows
from seisbert.artifacts.cache import atomic_artifact, check_verify_mode, verified
from seisbert.artifacts.paths import stage_config, stage_path
from seisbert.bundle import load_tokenizer_from
from seisbert.config import build
from seisbert.data.records import RecordSet, empty_rejected, rejection
from seisbert.data.splits import split_by_event
from seisbert.features import cut_segments, featurize_chunk, psd_operator
from seisbert.tokenizer import fit_tokenizer
from seisbert.vocabulary import vocabulary_report, write_report

log = logging.getLogger(__name__)


def verify_mode(cfg: DictConfig) -> str:
    return check_verify_mode(cfg.paths.verify)


def cached(cfg: DictConfig, stage: str) -> tuple[Path, bool]:
    """The stage's artifact folder and whether a whole artifact is already there (a failing
    one is warned about and removed, so the stage builds it again)."""
    path = stage_path(cfg, stage)
    done = verified(path, verify_mode(cfg), stage)
    if done and path not in _ANNOUNCED:  # said once per process, however many runs prepare it
        _ANNOUNCED.add(path)
        log.info("%s: reusing %s", stage, path)
    return path, done


_ANNOUNCED: set = set()


def upstream_path(cfg: DictConfig, upstream: dict | None, stage: str) -> Path:
    """The folder of an upstream stage: the one ``prepare`` resolved, else resolved now."""
    if upstream is not None and stage in upstream:
        return upstream[stage]
    return BUILDERS[stage](cfg, upstream)


# ----------------------------------------------------------------------------- records
def records_artifact(cfg: DictConfig, upstream: dict | None = None) -> Path:
    """Load the source's records once and cache them (waveforms.npy + metadata.parquet)."""
    path, done = cached(cfg, "records")
    if done:
        return path
    source = build(cfg.data, "data")
    with atomic_artifact(path, stage_config(cfg, "records"), verify=verify_mode(cfg)) as tmp:
        if (
            "waveform_path" in inspect.signature(source.load).parameters
        ):  # streamed: one chunk in memory
            records = source.load(progress=True, waveform_path=tmp / "waveforms.npy")
        else:
            records = source.load(progress=True)
            np.save(tmp / "waveforms.npy", records.waveforms.astype(np.float32, copy=False))
        records.metadata.to_parquet(tmp / "metadata.parquet")
        records.rejected.to_csv(tmp / "rejected.csv", index=False)
        (tmp / "records.json").write_text(
            json.dumps({"sampling_rate_hz": records.sampling_rate_hz, "channels": records.channels})
        )
    return path


def load_records(path: Path) -> RecordSet:
    info = json.loads((path / "records.json").read_text())
    return RecordSet(
        np.load(path / "waveforms.npy", mmap_mode="r"),
        pd.read_parquet(path / "metadata.parquet"),
        info["sampling_rate_hz"],
        info["channels"],
        pd.read_csv(path / "rejected.csv", dtype=str, keep_default_na=False),
    )


# ---------------------------------------------------------------------------- features
@dataclass
class FeatureSet:
    """A features artifact: ``features`` (N, T, F) float32 memmap and its metadata table."""

    path: Path
    features: np.ndarray
    metadata: pd.DataFrame

    @classmethod
    def load(cls, path: Path) -> "FeatureSet":
        path = Path(path)
        return cls(
            path,
            np.load(path / "features.npy", mmap_mode="r"),
            pd.read_parquet(path / "metadata.parquet"),
        )


def featurize_records(records: RecordSet, fcfg, progress: bool = True, path: Path | None = None):
    """Features ``(N, T, F)`` float32 for all records, in chunks, plus per-record reasons.

    With ``path`` the features are written there (``.npy``) chunk by chunk and returned
    memory-mapped, so memory holds one chunk, not the whole output.
    """
    if records.channels != fcfg.channels:
        raise ValueError(
            f"features.channels={fcfg.channels!r} but the data source provides "
            f"{records.channels!r}; set both to the same value"
        )
    if abs(records.sampling_rate_hz - fcfg.sampling_rate_hz) > 1e-9:
        raise ValueError(
            f"features.sampling_rate_hz={fcfg.sampling_rate_hz} but the records are "
            f"at {records.sampling_rate_hz} Hz"
        )
    meta, n = records.metadata, len(records)
    operator = psd_operator(fcfg, np.dtype(fcfg.compute_dtype))
    row_shape = (fcfg.n_windows, fcfg.n_bins * len(fcfg.channels))
    sink = None if path is None else NpyAppender(path, row_shape)
    out = np.empty((n if sink is None else 0, *row_shape), np.float32)
    reasons = np.empty(n, dtype=object)
    p = meta["trace_p_arrival_sample"].to_numpy()
    npts = meta["trace_npts"].to_numpy()
    step = fcfg.chunk_records
    for i in tqdm(range(0, n, step), desc="featurize", unit="chunk", disable=not progress):
        j = min(i + step, n)
        feats, reasons[i:j] = featurize_chunk(
            np.asarray(records.waveforms[i:j]), p[i:j], npts[i:j], fcfg, operator
        )
        if sink is None:
            out[i:j] = feats
        else:
            sink.append(feats)
    return (out if sink is None else sink.close()), reasons


def features_artifact(cfg: DictConfig, upstream: dict | None = None) -> Path:
    """Featurize the cached records and assign event splits (features.npy + metadata)."""
    path, done = cached(cfg, "features")
    if done:
        return path
    fcfg = build(cfg.features, "features")
    scfg = build(cfg.split, "split")
    records = load_records(upstream_path(cfg, upstream, "records"))
    with atomic_artifact(path, stage_config(cfg, "features"), verify=verify_mode(cfg)) as tmp:
        # every record's features streamed to disk, then the kept rows copied chunk by chunk
        feats, reasons = featurize_records(records, fcfg, path=tmp / "all_features.npy")
        keep = reasons == ""
        meta = records.metadata.reset_index(drop=True).copy()
        meta["record_index"] = np.arange(len(meta))
        rejected = pd.concat(
            [records.rejected, feature_rejections(meta, reasons)], ignore_index=True
        )
        meta = meta[keep].reset_index(drop=True)
        if not (scfg.use_source_split and "split" in meta.columns):
            meta["split"] = split_by_event(meta["event_id"], scfg.fractions, scfg.seed)
        copy_rows(feats, keep, tmp / "features.npy")
        del feats
        (tmp / "all_features.npy").unlink()
        meta.to_parquet(tmp / "metadata.parquet")
        rejected.to_csv(tmp / "rejected.csv", index=False)
        np.save(tmp / "frequencies_hz.npy", np.tile(fcfg.frequencies_hz, len(fcfg.channels)))
        summary = summarize(meta, rejected)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    report_summary(summary)
    return path


def feature_rejections(meta: pd.DataFrame, reasons: np.ndarray) -> pd.DataFrame:
    bad = np.flatnonzero(reasons != "")
    where = meta["trace_file"] if "trace_file" in meta.columns else meta["station_id"]
    rows = [
        rejection(
            f"{meta.event_id[i]}/{meta.station_id[i]}",
            "features",
            reasons[i],
            f"record_index={i} {where[i]}",
        )
        for i in bad
    ]
    return pd.DataFrame(rows) if rows else empty_rejected()


def summarize(meta: pd.DataFrame, rejected: pd.DataFrame) -> dict:
    """Counts per split and class, and of rejected records per reason."""
    table = pd.crosstab(meta["split"], meta["source_type"])
    return {
        "records": int(len(meta)),
        "events": int(meta["event_id"].nunique()),
        "per_split_and_class": {
            s: {c: int(v) for c, v in row.items()} for s, row in table.iterrows()
        },
        "rejected": {str(k): int(v) for k, v in rejected["reason"].value_counts().items()},
    }


def report_summary(summary: dict) -> None:
    log.info("kept %d records of %d events", summary["records"], summary["events"])
    for split, counts in summary["per_split_and_class"].items():
        log.info("  %-5s %s", split, "  ".join(f"{c}={n}" for c, n in counts.items()))
    skipped = summary["rejected"]
    log.info(
        "skipped %d records: %s",
        sum(skipped.values()),
        ", ".join(f"{n} {r}" for r, n in skipped.items()) or "none",
    )


# ------------------------------------------------------------------------------ tokens
@dataclass
class TokenSet:
    """A tokens artifact: ``tokens`` (N, T) int16, centroids (K, F), metadata, and its hash."""

    path: Path
    tokens: np.ndarray
    metadata: pd.DataFrame
    vocab_size: int
    pool_tokens: np.ndarray | None = None  # (P, T) of the unlabeled pool, when the run has one
    pool_metadata: pd.DataFrame | None = None
    fitted_for: str | None = (
        None  # tokens artifact the tokenizer was fitted in (tokenizer.from_path)
    )

    @property
    def digest(self) -> str:
        """This artifact's hash: the cache key of models trained on these tokens."""
        return self.path.name

    @property
    def tokenizer_digest(self) -> str:
        """The tokens artifact whose tokenizer made these ids: base models trained on any
        artifact with the same tokenizer_digest speak the same vocabulary."""
        return self.fitted_for or self.path.name

    @classmethod
    def load(cls, path: Path) -> "TokenSet":
        path = Path(path)
        tokens = np.load(path / "tokens.npy", mmap_mode="r")
        info = json.loads((path / "tokens.json").read_text())
        pool = (path / "pool_tokens.npy").is_file()
        return cls(
            path,
            tokens,
            pd.read_parquet(path / "metadata.parquet"),
            info["vocab_size"],
            np.load(path / "pool_tokens.npy", mmap_mode="r") if pool else None,
            pd.read_parquet(path / "pool_metadata.parquet") if pool else None,
            info.get("tokenizer_digest"),
        )

    def pretraining_view(
        self, windows: np.ndarray | None
    ) -> tuple[np.ndarray, pd.DataFrame, np.ndarray | None]:
        """Tokens, metadata and windows that pretraining reads: the labelled set plus the pool.

        Pool rows are appended with split ``train`` (pretraining trains on them); dev and test
        stay the labelled set's. Fine-tuning reads ``tokens``/``metadata`` and never sees the pool.
        """
        if self.pool_tokens is None:
            return self.tokens, self.metadata, windows
        pool_meta = self.pool_metadata.assign(split="train", label=-1)  # no label leaves the pool
        meta = pd.concat(
            [self.metadata, pool_meta[[c for c in self.metadata.columns if c in pool_meta]]],
            ignore_index=True,
        )
        tokens = np.concatenate([np.asarray(self.tokens), np.asarray(self.pool_tokens)])
        if windows is not None:
            windows = np.concatenate(
                [np.asarray(windows), np.load(self.path / "pool_features.npy", mmap_mode="r")]
            )
        log.info(
            "pretraining on %d labelled-set train records + %d unlabeled pool records",
            int((self.metadata["split"] == "train").sum()),
            len(self.pool_tokens),
        )
        return tokens, meta, windows


def tokens_artifact(cfg: DictConfig, upstream: dict | None = None) -> Path:
    """Fit the tokenizer on the training split of the cached features; assign every record."""
    path, done = cached(cfg, "tokens")
    if done:
        return path
    tcfg = build(cfg.tokenizer, "tokenizer")
    fset = FeatureSet.load(upstream_path(cfg, upstream, "features"))
    inputs = np.asarray(fset.features)
    if tcfg.method != "kmeans_psd":  # the paper's alternative: raw 1-s waveform windows
        inputs = waveform_windows(cfg, fset, upstream_path(cfg, upstream, "records"))
    pool = pool_features(cfg, fset)
    pool_inputs = None if pool is None else np.asarray(pool.features)
    if pool is not None and tcfg.method != "kmeans_psd":
        pcfg = pool_config(cfg)
        pool_inputs = waveform_windows(pcfg, pool, stage_path(pcfg, "records"))
    fitted_for = None
    if tcfg.from_path is not None:  # a trained tokenizer (bundle or tokens artifact): no fit
        tokenizer, fitted_for = reused_tokenizer(tcfg)
        tokens = tokenizer.tokenize(inputs)
        pool_tokens = None if pool is None else tokenizer.tokenize(pool_inputs)
    elif pool is None:
        tokenizer, tokens = fit_tokenizer(inputs, fset.metadata, tcfg)
    else:  # fit on the labelled set's train split plus the whole pool; tokenize both
        fit_meta = pd.concat(
            [fset.metadata[["split"]], pool.metadata[["split"]].assign(split="train")],
            ignore_index=True,
        )
        tokenizer, all_tokens = fit_tokenizer(np.concatenate([inputs, pool_inputs]), fit_meta, tcfg)
        tokens, pool_tokens = all_tokens[: len(inputs)], all_tokens[len(inputs) :]
    # always judged on the labelled set's PSD windows, so every method's report is in the same space
    report = vocabulary_report(
        np.asarray(fset.features),
        tokens,
        tokenizer.centroids,
        fset.metadata,
        build(tcfg.report, "tokenizer.report"),
        build(cfg.features, "features"),
    )
    with atomic_artifact(path, stage_config(cfg, "tokens"), verify=verify_mode(cfg)) as tmp:
        write_report(report, tmp / "vocabulary_report.json")
        np.save(tmp / "tokens.npy", tokens.astype(np.int16))
        tokenizer.save(tmp / "tokenizer")
        np.save(tmp / "centroids.npy", tokenizer.centroids)
        fset.metadata.to_parquet(tmp / "metadata.parquet")
        # so views find the windows beside their tokens (relative: the cache can move)
        os.symlink(
            Path("..") / ".." / "features" / fset.path.name / "features.npy", tmp / "features.npy"
        )
        info = {"vocab_size": int(tcfg.vocab_size), "features": str(fset.path)}
        if fitted_for is not None:
            info.update(tokenizer_digest=fitted_for, tokenizer_from=str(tcfg.from_path))
        if pool is not None:
            np.save(tmp / "pool_tokens.npy", pool_tokens.astype(np.int16))
            pool.metadata.to_parquet(tmp / "pool_metadata.parquet")
            os.symlink(
                Path("..") / ".." / "features" / pool.path.name / "features.npy",
                tmp / "pool_features.npy",
            )
            info.update(pool_features=str(pool.path), pool_records=len(pool.metadata))
        (tmp / "tokens.json").write_text(json.dumps(info))
    return path


def reused_tokenizer(tcfg):
    """``tokenizer.from_path``'s tokenizer and the tokens artifact it was fitted in; its method
    and K must be this config's, so the ids mean what a base model trained on them expects."""
    tokenizer, fitted_for = load_tokenizer_from(tcfg.from_path)
    for key in ("method", "vocab_size"):
        theirs, ours = getattr(tokenizer.cfg, key), getattr(tcfg, key)
        if theirs != ours:
            raise ValueError(
                f"tokenizer.from_path={tcfg.from_path!r} holds a tokenizer with {key}={theirs!r} "
                f"but tokenizer.{key}={ours!r}; set tokenizer.{key}={theirs!r}"
            )
    log.info(
        "tokens: reusing the tokenizer of %s (fitted in tokens/%s): no fit",
        tcfg.from_path,
        fitted_for,
    )
    return tokenizer, fitted_for


# ---------------------------------------------------------------------- unlabeled pool
def pool_config(cfg: DictConfig) -> DictConfig:
    """The run's config with the unlabeled pool (``unlabeled``) as its data source."""
    pool = copy.deepcopy(cfg)
    with open_dict(pool):
        pool.data = cfg.unlabeled
    return pool


def pool_features(cfg: DictConfig, labelled: FeatureSet) -> FeatureSet | None:
    """The pool's features (records and features cached like any source's), every row split
    ``pool``; None without ``unlabeled``. Its event ids must not meet the labelled set's."""
    if cfg.get("unlabeled") is None:
        return None
    pcfg = pool_config(cfg)
    pool = FeatureSet.load(prepare(pcfg, "features")["features"])
    shared = set(pool.metadata["event_id"]) & set(labelled.metadata["event_id"])
    if shared:
        raise ValueError(
            f"unlabeled: {len(shared)} event ids also in the labelled set (e.g. "
            f"{sorted(shared)[:3]}); give the pool disjoint ids (unlabeled.event_id_prefix "
            f"for a synthetic draw) so no labelled event is pretrained on as unlabeled"
        )
    pool.metadata["split"] = "pool"
    log.info(
        "unlabeled pool: %d records of %d events",
        len(pool.metadata),
        pool.metadata["event_id"].nunique(),
    )
    return pool


def waveform_windows(cfg: DictConfig, fset: FeatureSet, records_path: Path) -> np.ndarray:
    """Raw vertical windows ``(N, T, window_samples)`` of the kept records, as segmented."""
    fcfg = build(cfg.features, "features")
    records = load_records(records_path)
    rows = fset.metadata["record_index"].to_numpy()
    meta = records.metadata.iloc[rows]
    seg, _ = cut_segments(
        np.asarray(records.waveforms[rows, 0]),
        meta["trace_p_arrival_sample"].to_numpy(),
        meta["trace_npts"].to_numpy(),
        fcfg,
    )
    return seg.reshape(len(rows), fcfg.n_windows, fcfg.window_samples).astype(np.float32)


BUILDERS = {"records": records_artifact, "features": features_artifact, "tokens": tokens_artifact}


def prepare(cfg: DictConfig, until: str = "tokens") -> dict[str, Path]:
    """Build or reuse every stage up to ``until``, each once; returns their artifact folders."""
    order = list(BUILDERS)
    paths: dict[str, Path] = {}
    for stage in order[: order.index(until) + 1]:
        paths[stage] = BUILDERS[stage](cfg, paths)
    return paths
