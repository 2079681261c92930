"""Classification metrics for earthquake (0) vs. blast (1), per record and per event.

The paper reports accuracy and confusion matrices; an honest comparison
adds balanced accuracy as the headline (the synthetic classes are not
balanced after the SNR cut) and an event-level decision: a monitoring analyst labels
an *event*, so the event's probability is the mean of its stations' probabilities,
scored against the event's majority label (a tie goes to the label of its first
record). Every arm (transformers, trees, CNN) reports through this one function.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from seisbert.figures import save_figure

log = logging.getLogger(__name__)


def classification_metrics(
    y_true: np.ndarray,
    prob_blast: np.ndarray,
    event_ids: np.ndarray | None = None,
    threshold: float = 0.5,
) -> dict:
    """Accuracy, balanced accuracy, F1 (blast positive), ROC-AUC and the confusion matrix.

    Args:
        y_true: ``(N,)`` labels, 0 earthquake / 1 blast.
        prob_blast: ``(N,)`` predicted probability of blast; predicted blast if ``>= threshold``.
        event_ids: ``(N,)`` event of each record; if given, the same metrics at event
            level are added under keys prefixed ``event_``.

    Returns:
        Plain Python floats/ints/lists (JSON-ready). ``confusion_matrix`` is
        ``[[tn, fp], [fn, tp]]`` (rows true, columns predicted). ``roc_auc`` is NaN
        when only one class is present.
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    prob_blast = np.asarray(prob_blast, dtype=float).ravel()
    if len(y_true) != len(prob_blast) or len(y_true) == 0:
        raise ValueError(
            f"y_true and prob_blast must be non-empty and equally long; got "
            f"{len(y_true)} and {len(prob_blast)}"
        )
    out = _binary_metrics(y_true, prob_blast, threshold)
    if event_ids is not None:
        event_true, event_prob = event_level(y_true, prob_blast, np.asarray(event_ids))
        out.update(
            {f"event_{k}": v for k, v in _binary_metrics(event_true, event_prob, threshold).items()}
        )
    return out


# Balanced accuracy at or below this on dev is "at chance" for a two-class problem: the point
# where a run is flagged (and, in the study, rerun) rather than averaged in as a result.
CHANCE_BALANCED_ACCURACY = 0.55


def collapse_warnings(metrics: dict, split: str, class_names) -> list[str]:
    """Warnings for a classifier that predicts one class on ``split`` (naming the class) or
    whose balanced accuracy there is at chance; ``metrics`` from ``classification_metrics``."""
    out = []
    predicted = np.asarray(metrics["confusion_matrix"]).sum(axis=0)  # (2,) per predicted class
    if predicted.sum() and (predicted == 0).any():
        only = class_names[int(np.argmax(predicted))]
        out.append(
            f"the classifier predicts one class on {split}: all {int(predicted.sum())} "
            f"records are called '{only}' (collapsed; its balanced accuracy "
            f"{metrics['balanced_accuracy']:.3f} says nothing)"
        )
    elif metrics["balanced_accuracy"] <= CHANCE_BALANCED_ACCURACY:
        out.append(
            f"{split} balanced accuracy {metrics['balanced_accuracy']:.3f} is at chance "
            f"(<= {CHANCE_BALANCED_ACCURACY}); try a smaller task.params.lr or more labels"
        )
    return out


def score_line(m: dict) -> str:
    """Balanced accuracy (records, and events where known), accuracy, ROC-AUC and the count."""
    events = (
        f" (events {m['event_balanced_accuracy']:.3f})" if "event_balanced_accuracy" in m else ""
    )
    return (
        f"balanced accuracy {m['balanced_accuracy']:.3f}{events}, accuracy {m['accuracy']:.3f}, "
        f"ROC-AUC {m['roc_auc']:.3f}, {int(np.sum(m['confusion_matrix']))} records"
    )


def event_level(
    y_true: np.ndarray, prob_blast: np.ndarray, event_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per event: majority label (tie: first record's label) and mean blast probability."""
    if len(event_ids) != len(y_true):
        raise ValueError(f"event_ids has {len(event_ids)} entries for {len(y_true)} records")
    groups = pd.DataFrame({"event": event_ids, "y": y_true, "p": prob_blast}).groupby(
        "event", sort=False
    )
    blast_fraction = groups["y"].mean().to_numpy()
    first = groups["y"].first().to_numpy()
    label = np.where(blast_fraction > 0.5, 1, np.where(blast_fraction < 0.5, 0, first))
    return label.astype(int), groups["p"].mean().to_numpy()


def _binary_metrics(y_true: np.ndarray, prob_blast: np.ndarray, threshold: float) -> dict:
    y_pred = (prob_blast >= threshold).astype(int)
    cm = skm.confusion_matrix(y_true, y_pred, labels=[0, 1])
    one_class = len(np.unique(y_true)) < 2
    return {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        # With one class present the mean recall is that class's recall.
        "balanced_accuracy": float(
            np.mean([cm[c, c] / cm[c].sum() for c in (0, 1) if cm[c].sum() > 0])
        ),
        "f1": float(skm.f1_score(y_true, y_pred, pos_label=1, zero_division=0)),
        "roc_auc": float("nan") if one_class else float(skm.roc_auc_score(y_true, prob_blast)),
        "confusion_matrix": cm.astype(int).tolist(),
    }


def plot_confusion(
    cm: np.ndarray | list,
    class_names: tuple[str, ...],
    path: str | Path = "confusion.png",
    title: str = "",
) -> Path:
    """Write a confusion matrix (rows true, columns predicted) as a PNG: counts and row %."""
    from matplotlib.figure import Figure  # no pyplot: no global state, works headless

    cm = np.asarray(cm, dtype=float)
    row_share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(3.6, 3.2), dpi=150)
    ax = fig.add_subplot()
    ax.imshow(row_share, cmap="Blues", vmin=0, vmax=1)
    for i, j in np.ndindex(cm.shape):
        colour = "white" if row_share[i, j] > 0.6 else "black"
        ax.text(
            j,
            i,
            f"{int(cm[i, j])}\n{100 * row_share[i, j]:.1f}%",
            ha="center",
            va="center",
            color=colour,
            fontsize=8,
        )
    ticks = np.arange(len(class_names))
    ax.set(
        xticks=ticks,
        yticks=ticks,
        xticklabels=class_names,
        yticklabels=class_names,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)  # closes the figure too (it used to stay open)


PREDICTIONS_FILE = "test_predictions.csv"


def save_predictions(
    path: str | Path,
    metadata: pd.DataFrame,
    rows: np.ndarray,
    prob: np.ndarray,
    extra: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write one row per test record: ``row``, ``event_id``, ``label``, ``prob`` (P(blast)),
    plus ``extra`` probability columns aligned with ``rows`` (e.g. masked-input scores).

    The study's bootstrap intervals over events and its checks recompute every metric
    from these files, so a reported number can always be traced to predictions.
    """
    rows = np.asarray(rows, dtype=np.int64)
    frame = pd.DataFrame(
        {
            "row": rows,
            "event_id": metadata["event_id"].astype(str).to_numpy()[rows],
            "label": metadata["label"].to_numpy().astype(int)[rows],
            "prob": np.asarray(prob, dtype=float),
        }
    )
    for name, values in (extra or {}).items():
        frame[name] = np.asarray(values, dtype=float)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def load_predictions(path: str | Path) -> pd.DataFrame:
    """A predictions file written by ``save_predictions``; names the file when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no test predictions at {path}: the run must write {PREDICTIONS_FILE} "
            f"(seisbert.metrics.save_predictions) for the study's intervals"
        )
    return pd.read_csv(path, dtype={"event_id": str})
