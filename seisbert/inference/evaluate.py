"""``seisbert evaluate``: a bundle scored on a labelled source, per record and per event.

Thresholded metrics (accuracy, balanced accuracy, F1, confusion matrix) beside
threshold-free ones (ROC-AUC, PR-AUC with blast as the positive class): a model moved to
a region with other class priors may rank events well yet put many below 0.5, which only
the second kind shows. Figures: confusion matrices, a reliability diagram and ROC curves.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from seisbert.figures import save_figure
from seisbert.metrics import classification_metrics, event_level, plot_confusion

log = logging.getLogger(__name__)


def labelled(predictions: pd.DataFrame) -> pd.DataFrame:
    if "label" not in predictions.columns:
        raise ValueError(
            "evaluate needs labels: the data source gives no 'label' column "
            "(a catalogue with event types, or data=synthetic / data=seisbench)"
        )
    return predictions


def evaluation_metrics(predictions: pd.DataFrame, threshold: float) -> dict:
    """classification_metrics per record and per event, plus PR-AUC for both levels."""
    pred = labelled(predictions)
    col = "prob_blast_shifted" if "prob_blast_shifted" in pred else "prob_blast"
    y, p, ev = pred["label"].to_numpy(int), pred[col].to_numpy(float), pred["event_id"].to_numpy()
    out = classification_metrics(y, p, ev, threshold)
    ey, ep = event_level(y, p, ev)
    out["pr_auc"], out["event_pr_auc"] = pr_auc(y, p), pr_auc(ey, ep)
    out["prior_blast_observed"] = float(y.mean())
    return out


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision (blast positive); NaN with one class only."""
    return float("nan") if len(np.unique(y)) < 2 else float(skm.average_precision_score(y, p))


def plot_reliability(y: np.ndarray, p: np.ndarray, path: Path, n_bins: int, title: str) -> Path:
    """Observed blast share against mean predicted probability per bin, with bin counts."""
    from matplotlib.figure import Figure

    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    filled = count > 0
    mean_p = np.bincount(which, p, n_bins)[filled] / count[filled]
    share = np.bincount(which, y, n_bins)[filled] / count[filled]
    fig = Figure(figsize=(3.6, 3.4), dpi=150)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--", label="calibrated")
    ax.plot(mean_p, share, "o-", ms=3, label="model")
    for x, s, c in zip(mean_p, share, count[filled]):
        ax.annotate(str(c), (x, s), fontsize=5, xytext=(2, -7), textcoords="offset points")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="predicted P(blast)",
        ylabel="observed blast share",
        title=title,
    )
    ax.legend(fontsize=6, loc="upper left")
    return save_figure(fig, path)


def plot_roc(curves: dict, path: Path, title: str) -> Path:
    """ROC curves, one per level (``name -> (y, p)``), with their AUC in the legend."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.6, 3.4), dpi=150)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
    for name, (y, p) in curves.items():
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = skm.roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {skm.roc_auc_score(y, p):.3f})")
    ax.set(xlabel="false blast rate", ylabel="true blast rate", title=title)
    ax.legend(fontsize=6, loc="lower right")
    return save_figure(fig, path)


def write_evaluation(
    out: Path, predictions: pd.DataFrame, threshold: float, n_bins: int, class_names
) -> dict:
    """metrics.json, confusion_record.png, confusion_event.png, reliability.png, roc.png."""
    metrics = evaluation_metrics(predictions, threshold)
    col = "prob_blast_shifted" if "prob_blast_shifted" in predictions else "prob_blast"
    y, p = predictions["label"].to_numpy(int), predictions[col].to_numpy(float)
    ey, ep = event_level(y, p, predictions["event_id"].to_numpy())
    names = tuple(class_names)
    plot_confusion(metrics["confusion_matrix"], names, out / "confusion_record.png", "per record")
    plot_confusion(
        metrics["event_confusion_matrix"], names, out / "confusion_event.png", "per event"
    )
    plot_reliability(y, p, out / "reliability.png", n_bins, "reliability, per record")
    plot_roc({"per record": (y, p), "per event": (ey, ep)}, out / "roc.png", "ROC")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log.info(
        "evaluate: balanced accuracy %.3f per record, %.3f per event; ROC-AUC %.3f / %.3f; "
        "PR-AUC %.3f / %.3f",
        metrics["balanced_accuracy"],
        metrics["event_balanced_accuracy"],
        metrics["roc_auc"],
        metrics["event_roc_auc"],
        metrics["pr_auc"],
        metrics["event_pr_auc"],
    )
    return metrics
