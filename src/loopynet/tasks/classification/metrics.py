"""Binary classification metrics: accuracy, precision, recall, F1, confusion matrix, loss."""

from __future__ import annotations

import numpy as np

from loopynet.errors import InputError


def binary_cross_entropy(probabilities: np.ndarray, labels: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy (nats), probabilities clipped to [eps, 1-eps] as Keras does."""
    p = np.clip(probabilities.astype(np.float64), eps, 1 - eps)
    y = labels.astype(np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if len(y) else float("nan")


def check_threshold(threshold: float) -> None:
    """Raise InputError (a ValueError) unless `threshold` is a number in [0, 1] (the decision rule p >= threshold)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise InputError(f"threshold must be a probability in [0, 1], got {threshold!r}")


def binary_metrics(probabilities: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    """Metrics for the positive class (label 1), predicted when probability >= threshold.

    Returns a dict with accuracy, precision, recall, f1, loss, confusion_matrix
    ([[true neg, false pos], [false neg, true pos]], rows = true class), support.
    Precision/recall/F1 are 0.0 when undefined (no positive predictions / labels).
    """
    predicted = probabilities >= threshold
    actual = labels == 1
    tp = int(np.sum(predicted & actual))
    fp = int(np.sum(predicted & ~actual))
    fn = int(np.sum(~predicted & actual))
    tn = int(np.sum(~predicted & ~actual))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": (tp + tn) / len(labels) if len(labels) else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "loss": binary_cross_entropy(probabilities, labels),
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "support": int(len(labels)),
    }
