"""``experiment=baseline_rf|baseline_hgb|baseline_cnn``: non-transformer references.

Same cached features/tokens, same splits and the same labelled subsets as the
transformers; each baseline's main knob is chosen on the dev split.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from seisbert.baselines import fit_baseline
from seisbert.data.records import CLASS_NAMES
from seisbert.data.subsets import labelled_rows
from seisbert.logs import log_summary
from seisbert.metrics import collapse_warnings, plot_confusion, score_line
from seisbert.pipeline import FeatureSet, TokenSet
from seisbert.train.common import save_metrics

log = logging.getLogger(__name__)


def baseline(cfg: DictConfig, artifacts: dict) -> dict:
    name = cfg.task.baseline
    fset = FeatureSet.load(artifacts["features"])
    tset = TokenSet.load(artifacts["tokens"])
    rows = labelled_rows(tset.metadata, cfg.task.labels, cfg.task.subset_seed)
    result = fit_baseline(
        name,
        cfg.baseline,
        np.asarray(fset.features),
        np.asarray(tset.tokens),
        tset.metadata,
        rows,
        seed=cfg.seed,
    )
    metrics = {f"test/{k}": v for k, v in result.test.items()}
    metrics.update({f"train/{k}": v for k, v in result.train.items() if np.isscalar(v)})
    metrics.update(
        {"chosen": result.chosen, "tried": result.tried, "train_records": result.n_train}
    )
    out = Path(cfg.paths.output_dir)
    plot_confusion(
        np.array(result.test["confusion_matrix"]),
        CLASS_NAMES,
        out / "confusion.png",
        f"{name}: test, per record",
    )
    metrics["warnings"] = collapse_warnings(result.test, "test", CLASS_NAMES)
    save_metrics(cfg, metrics)
    log_summary(
        f"baseline {name} finished",
        {"run folder": str(out), "chosen": str(result.chosen), "test": score_line(result.test)},
        metrics["warnings"],
    )
    return metrics
