"""Tree baselines: a random forest on token sequences and boosted trees on PSD windows.

- ``rf``: the paper's baseline (Linville, Sandia: 81% test accuracy at depth 30, with
  over 99% train accuracy). Its input is the token sequence itself, the 90 token ids
  used as integer features (``features: sequence``, the paper's choice); a bag-of-tokens
  histogram can be added or used instead. The depth is chosen on the dev split.
- ``hgb``: beyond the paper, scikit-learn's ``HistGradientBoostingClassifier`` on the
  flattened PSD windows (T*F = 1800 values), the cheap strong supervised reference.
  Its learning rate and leaf count are chosen on the dev split.

Each model exposes the same four pieces the driver in ``seisbert.baselines`` uses:
a config dataclass with ``grid()``, ``inputs()``, ``fit()`` and ``predict_proba()``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from seisbert.config import check_choice, check_range

_MAX_BINS = 255  # HistGradientBoostingClassifier's default max_bins
SELECTION_METRICS = ("balanced_accuracy", "accuracy", "f1", "roc_auc")
TOKEN_FEATURES = ("sequence", "histogram", "sequence+histogram")


def check_n_jobs(n_jobs: int) -> None:
    if n_jobs == 0 or n_jobs < -1:
        raise ValueError(
            f"baseline.n_jobs={n_jobs} is not allowed; use -1 (all cores) or a positive count"
        )


def check_grid(key: str, values: list, lo: float, hi: float) -> None:
    """Every grid needs at least one value, each in [lo, hi]."""
    if len(values) == 0:
        raise ValueError(f"{key}=[] is empty; give at least one value")
    for i, value in enumerate(values):
        check_range(f"{key}[{i}]", value, lo, hi)


@dataclass
class ForestConfig:
    """Random forest on tokens (``configs/baseline/rf.yaml``)."""

    # tried in order; ties keep the shallower
    max_depth_grid: list[int] = field(default_factory=lambda: [12, 15, 18, 21, 24, 27, 30])
    n_estimators: int = 200
    features: str = "sequence"  # the paper's input; see TOKEN_FEATURES
    max_features: str = "sqrt"  # features tried per split
    min_samples_leaf: int = 1
    class_weight: str | None = "balanced"  # balanced | null
    n_jobs: int = 1  # worker processes; -1 all cores
    # dev metric that picks the depth: balanced_accuracy | accuracy | f1 | roc_auc
    selection_metric: str = "balanced_accuracy"

    def __post_init__(self):
        check_n_jobs(self.n_jobs)
        check_grid("baseline.max_depth_grid", self.max_depth_grid, 1, 200)
        check_range("baseline.n_estimators", self.n_estimators, 1, 10_000)
        check_choice("baseline.features", self.features, TOKEN_FEATURES)
        check_choice("baseline.max_features", self.max_features, ("sqrt", "log2"))
        check_range("baseline.min_samples_leaf", self.min_samples_leaf, 1, 10_000)
        check_choice("baseline.class_weight", self.class_weight, ("balanced", None))
        check_choice("baseline.selection_metric", self.selection_metric, SELECTION_METRICS)

    def grid(self) -> list[dict]:
        return [{"max_depth": int(d)} for d in self.max_depth_grid]

    @staticmethod
    def inputs(
        cfg: ForestConfig, features: np.ndarray | None, tokens: np.ndarray | None
    ) -> np.ndarray:
        if tokens is None:
            raise ValueError("baseline rf needs tokens (N, T); run the tokenizer stage first")
        return token_inputs(tokens, cfg.features)

    @staticmethod
    def fit(cfg: ForestConfig, params: dict, x_train, y_train, x_dev, y_dev, seed: int):
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(
            n_estimators=cfg.n_estimators,
            max_depth=params["max_depth"],
            max_features=cfg.max_features,
            min_samples_leaf=cfg.min_samples_leaf,
            class_weight=cfg.class_weight,
            n_jobs=cfg.n_jobs,
            random_state=seed,
        )
        return model.fit(x_train, y_train)

    @staticmethod
    def predict_proba(model, x: np.ndarray) -> np.ndarray:
        return blast_column(model, x)


@dataclass
class BoostingConfig:
    """Histogram gradient boosting on flattened PSD windows (``configs/baseline/hgb.yaml``)."""

    learning_rate_grid: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2])
    max_leaf_nodes_grid: list[int] = field(default_factory=lambda: [15, 31])
    max_iter: int = 200  # boosting rounds (no early stopping: dev chooses the knobs)
    min_samples_leaf: int = 20
    l2_regularization: float = 0.0
    class_weight: str | None = "balanced"  # balanced | null
    n_jobs: int = 1  # OpenMP threads; -1 all cores
    selection_metric: str = "balanced_accuracy"  # balanced_accuracy | accuracy | f1 | roc_auc

    def __post_init__(self):
        check_n_jobs(self.n_jobs)
        check_grid("baseline.learning_rate_grid", self.learning_rate_grid, 1e-4, 1.0)
        check_grid("baseline.max_leaf_nodes_grid", self.max_leaf_nodes_grid, 2, 4096)
        check_range("baseline.max_iter", self.max_iter, 1, 100_000)
        check_range("baseline.min_samples_leaf", self.min_samples_leaf, 1, 10_000)
        check_range("baseline.l2_regularization", self.l2_regularization, 0.0)
        check_choice("baseline.class_weight", self.class_weight, ("balanced", None))
        check_choice("baseline.selection_metric", self.selection_metric, SELECTION_METRICS)

    def grid(self) -> list[dict]:
        pairs = itertools.product(self.learning_rate_grid, self.max_leaf_nodes_grid)
        return [{"learning_rate": float(lr), "max_leaf_nodes": int(leaves)} for lr, leaves in pairs]

    @staticmethod
    def inputs(
        cfg: BoostingConfig, features: np.ndarray | None, tokens: np.ndarray | None
    ) -> np.ndarray:
        if features is None:
            raise ValueError(
                "baseline hgb needs PSD features (N, T, F); run the features stage first"
            )
        return np.asarray(features, dtype=np.float32).reshape(len(features), -1)  # (N, T*F)

    @staticmethod
    def fit(cfg: BoostingConfig, params: dict, x_train, y_train, x_dev, y_dev, seed: int):
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits

        # No early stopping: its internal split would take labels from a 50-record subset;
        # the dev split already chooses the knobs. Without it the fit does not use the seed.
        boosting = HistGradientBoostingClassifier(
            learning_rate=params["learning_rate"],
            max_leaf_nodes=params["max_leaf_nodes"],
            max_iter=cfg.max_iter,
            min_samples_leaf=cfg.min_samples_leaf,
            l2_regularization=cfg.l2_regularization,
            class_weight=cfg.class_weight,
            early_stopping=False,
            random_state=seed,
        )
        binner = QuantileBinner(_MAX_BINS).fit(x_train)
        # OpenMP threads beyond the free cores slow boosting several-fold on a shared machine.
        with threadpool_limits(limits=None if cfg.n_jobs == -1 else cfg.n_jobs, user_api="openmp"):
            return binner, boosting.fit(binner.transform(x_train), y_train)

    @staticmethod
    def predict_proba(model, x: np.ndarray) -> np.ndarray:
        binner, boosting = model
        return blast_column(boosting, binner.transform(x))


def token_inputs(tokens: np.ndarray, kind: str) -> np.ndarray:
    """Token ids ``(N, T)`` as forest features: the sequence, a histogram ``(N, K)``, or both."""
    tokens = np.asarray(tokens).astype(np.int64)
    parts = []
    if "sequence" in kind:
        parts.append(tokens.astype(np.float32))  # (N, T): id at each time step
    if "histogram" in kind:
        vocab = int(tokens.max()) + 1
        offsets = tokens + vocab * np.arange(len(tokens))[:, None]  # one bincount for all rows
        counts = np.bincount(offsets.ravel(), minlength=vocab * len(tokens))
        parts.append(counts.reshape(len(tokens), vocab).astype(np.float32))  # (N, K)
    return np.concatenate(parts, axis=1)


class QuantileBinner:
    """Per-feature quantile codes (at most ``n_bins`` values) fit on the labelled rows.

    The booster's own binner does this, unweighted, up to scikit-learn 1.8. In 1.9 a
    class-weighted fit computes 254 weighted percentiles one call at a time per feature:
    minutes for 1800 features (scikit-learn PR #34248). Fed codes with at most
    ``max_bins`` distinct values, the booster keeps them as they are and skips that path.
    """

    def __init__(self, n_bins: int = 255):
        self.n_bins = n_bins

    def fit(self, x: np.ndarray) -> QuantileBinner:
        levels = np.linspace(0.0, 1.0, self.n_bins + 1)[1:-1]
        self.edges_ = np.quantile(x, levels, axis=0).T  # (D, n_bins - 1), sorted per feature
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        codes = np.empty(x.shape, dtype=np.float32)
        for d, edges in enumerate(self.edges_):  # one searchsorted per feature column: ~1 ms each
            codes[:, d] = np.searchsorted(edges, x[:, d], side="left")
        return codes


def blast_column(model, x: np.ndarray) -> np.ndarray:
    """P(blast) from an sklearn classifier, also when it saw only one class."""
    proba = model.predict_proba(x)
    classes = list(model.classes_)
    return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(x))
