"""A Lightning callback the study adds to every fine-tuning run: save the test predictions.

The study's intervals are bootstrapped over test events, so each run must leave its
per-record probabilities behind. The callback reads what the fine-tuning module scored
in ``trainer.test`` (``last_metrics``: rows and P(blast), after the best dev checkpoint
was restored) and, when asked, scores the paper's masked inputs too, then writes
``test_predictions.csv`` into the run folder. It is added by override
(``++callbacks.test_predictions._target_=seisbert.study.callbacks.SaveTestPredictions``),
so no task needs to know about the study.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L

from seisbert.metrics import PREDICTIONS_FILE, save_predictions
from seisbert.tasks.finetune import MASKED_EVALS, masked_input_accuracy

log = logging.getLogger(__name__)


class SaveTestPredictions(L.Callback):
    """Write ``<output_dir>/test_predictions.csv`` after ``trainer.test``."""

    def __init__(self, output_dir: str, masked: bool = False):
        self.path = Path(output_dir) / PREDICTIONS_FILE
        self.masked = masked

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        scored = getattr(pl_module, "last_metrics", None)
        if not trainer.is_global_zero:
            return
        if not scored or "rows" not in scored:
            log.warning(
                "%s has no last_metrics rows: no test predictions written for the study",
                type(pl_module).__name__,
            )
            return
        meta = trainer.datamodule.meta
        extra = (
            masked_probabilities(pl_module, trainer.datamodule, scored["rows"])
            if self.masked
            else {}
        )
        save_predictions(self.path, meta, scored["rows"], scored["prob"], extra)


def masked_probabilities(module, dm, rows) -> dict:
    """P(blast) on the paper's masked test inputs, aligned with ``rows`` (the task's masks)."""
    import pandas as pd

    out = {}
    for name, (mode, rate, _) in MASKED_EVALS.items():
        r = masked_input_accuracy(module, dm.test_dataloader(), mode, rate)
        out[f"prob_masked_{name}"] = (
            pd.Series(r["prob"], index=r["rows"]).groupby(level=0).first().loc[rows].to_numpy()
        )
    return out
