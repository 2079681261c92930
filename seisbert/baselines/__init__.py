"""Non-transformer baselines with one tuning protocol: fit on a labelled subset, choose on dev.

How arms are compared honestly: every arm gets the same labelled subset (from
``seisbert.data.subsets.label_subsets``), its main knob is chosen on the dev split,
the report says what was tried, and test metrics come from
``seisbert.metrics.classification_metrics`` with event ids. ``fit_baseline`` is that
protocol; the models only say what their grid is and how they fit and predict:

- ``rf``  random forest on token sequences (``seisbert.baselines.forest.ForestConfig``)
- ``hgb`` boosted trees on flattened PSD windows (``seisbert.baselines.forest.BoostingConfig``)
- ``cnn`` 2-D CNN on PSD windows (``seisbert.baselines.cnn.CNNConfig``)

Test rows reach the models only through ``predict_proba`` of the chosen model: the
tuning loop is handed the train and dev slices alone.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seisbert.config import build
from seisbert.metrics import classification_metrics

log = logging.getLogger(__name__)

# name -> "module:ConfigClass"; imported on use so the trees never import torch.
BASELINES = {
    "rf": "seisbert.baselines.forest:ForestConfig",
    "hgb": "seisbert.baselines.forest:BoostingConfig",
    "cnn": "seisbert.baselines.cnn:CNNConfig",
}


@dataclass
class BaselineResult:
    """What one baseline fit produced: the chosen knob, what was tried, and the metrics."""

    name: str
    chosen: dict  # knob values picked on dev, e.g. {"max_depth": 24}
    tried: list[dict]  # [{"params": {...}, "dev": {selection_metric: value}, "seconds": s}, ...]
    selection_metric: str
    train: dict  # metrics of the chosen model on its own labelled subset
    dev: dict
    test: dict  # with event_* keys
    n_train: int
    seed: int
    seconds: float
    test_rows: np.ndarray | None = None  # positional test rows, for intervals over events
    test_prob: np.ndarray | None = None  # P(blast) of the chosen model on those rows

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.update(
            {
                k: None if v is None else np.asarray(v).tolist()
                for k, v in (("test_rows", self.test_rows), ("test_prob", self.test_prob))
            }
        )
        return out


def config_class(name: str) -> type:
    """The config dataclass of baseline ``name``."""
    if name not in BASELINES:
        raise ValueError(f"baseline={name!r} is not allowed; choose one of {list(BASELINES)}")
    module, cls = BASELINES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def fit_baseline(
    name: str,
    cfg,
    features: np.ndarray | None,
    tokens: np.ndarray | None,
    metadata: pd.DataFrame,
    train_idx: np.ndarray,
    seed: int = 0,
    grid: list[dict] | None = None,
) -> BaselineResult:
    """Fit baseline ``name`` on rows ``train_idx``, choose its knob on dev, score on test.

    Args:
        cfg: the model's config dataclass, or a dict/DictConfig with its ``_target_``.
        features: ``(N, T, F)`` float32 PSD windows (hgb, cnn); may be None for rf.
        tokens: ``(N, T)`` int token ids (rf); may be None for hgb and cnn.
        metadata: one row per record with ``split``, ``event_id``, ``label``.
        train_idx: positional rows of the labelled subset; all must be in the train split.
        grid: the knob settings to try, default ``cfg.grid()``; the study passes the one setting
            chosen at its tuning seed, as the transformer arms reuse their learning rate.
    """
    cfg = baseline_config(name, cfg)
    train_idx, dev_idx, test_idx = _split_rows(metadata, train_idx)
    x = cfg.inputs(cfg, features, tokens)
    y = metadata["label"].to_numpy().astype(int)
    events = metadata["event_id"].astype(str).to_numpy()
    start = time.perf_counter()
    grid = cfg.grid() if grid is None else [dict(p) for p in grid]
    if not grid:
        raise ValueError(f"baseline {name!r}: the grid to try is empty")
    model, chosen, tried, dev = _select_on_dev(
        cfg, grid, x[train_idx], y[train_idx], x[dev_idx], y[dev_idx], events[dev_idx], seed
    )
    train = classification_metrics(
        y[train_idx], cfg.predict_proba(model, x[train_idx]), events[train_idx]
    )
    test_prob = cfg.predict_proba(model, x[test_idx])
    test = classification_metrics(y[test_idx], test_prob, events[test_idx])
    seconds = time.perf_counter() - start
    log.info(
        "%s on %d labels: chose %s; test balanced acc %.3f (event %.3f) in %.0f s",
        name,
        len(train_idx),
        chosen,
        test["balanced_accuracy"],
        test["event_balanced_accuracy"],
        seconds,
    )
    return BaselineResult(
        name,
        chosen,
        tried,
        cfg.selection_metric,
        train,
        dev,
        test,
        len(train_idx),
        seed,
        seconds,
        test_idx,
        np.asarray(test_prob, dtype=float),
    )


def baseline_config(name: str, cfg):
    """``cfg`` as baseline ``name``'s dataclass, built from a dict/DictConfig if needed."""
    cls = config_class(name)
    if not dataclasses.is_dataclass(cfg):
        cfg = build(cfg, "baseline")
    if not isinstance(cfg, cls):
        raise ValueError(f"baseline={name!r} needs a {cls.__name__}; got {type(cfg).__name__}")
    return cfg


def _split_rows(
    metadata: pd.DataFrame, train_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the labelled rows are training rows; return them with the dev and test rows."""
    split = metadata["split"].to_numpy()
    train_idx = np.asarray(train_idx, dtype=np.int64)
    if len(train_idx) == 0:
        raise ValueError("train_idx is empty; pass rows from label_subsets")
    outside = train_idx[split[train_idx] != "train"]
    if len(outside):
        raise ValueError(
            f"train_idx holds {len(outside)} rows outside the train split (e.g. row {outside[0]})"
        )
    dev_idx, test_idx = np.flatnonzero(split == "dev"), np.flatnonzero(split == "test")
    if len(dev_idx) == 0 or len(test_idx) == 0:
        raise ValueError(
            f"need dev and test rows to choose and score; "
            f"got {len(dev_idx)} dev, {len(test_idx)} test"
        )
    return train_idx, dev_idx, test_idx


def _select_on_dev(cfg, grid: list[dict], x_train, y_train, x_dev, y_dev, events_dev, seed: int):
    """Fit every point of ``grid`` on the labelled subset; keep the best dev score.

    The score is ``cfg.selection_metric``.

    Ties keep the earlier grid point (the grids are ordered simplest first). Only the
    train and dev slices are in scope here, so test rows cannot influence the choice.
    """
    best, tried = None, []
    for params in grid:
        start = time.perf_counter()
        model = cfg.fit(cfg, params, x_train, y_train, x_dev, y_dev, seed)
        dev = classification_metrics(y_dev, cfg.predict_proba(model, x_dev), events_dev)
        score = dev[cfg.selection_metric]
        tried.append(
            {
                "params": params,
                "dev": {cfg.selection_metric: score},
                "seconds": time.perf_counter() - start,
            }
        )
        log.debug(
            "  %s: dev %s %.4f", params, cfg.selection_metric, score
        )  # the chosen one is logged
        rank = -np.inf if np.isnan(score) else score  # NaN (one-class dev) never beats a number
        if best is None or rank > best[0]:
            best = (rank, model, params, dev)
    return best[1], best[2], tried, best[3]
