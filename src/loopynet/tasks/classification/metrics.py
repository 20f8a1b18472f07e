"""Binary classification metrics: accuracy, precision, recall, F1, confusion matrix, loss, the
majority-class baseline, balanced accuracy, ROC AUC and PR AUC (average precision), and the threshold
that maximises balanced accuracy."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

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

    Returns a dict with accuracy, baseline_accuracy (always predicting the split's majority class),
    balanced_accuracy, roc_auc, pr_auc (None when a class is absent), precision, recall, f1, loss,
    confusion_matrix ([[true neg, false pos], [false neg, true pos]], rows = true class), support.
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
        "baseline_accuracy": max(int(actual.sum()), int((~actual).sum())) / len(labels) if len(labels) else float("nan"),
        "balanced_accuracy": balanced_accuracy(tp, fp, fn, tn),
        "roc_auc": _defined(roc_auc(probabilities, labels)),
        "pr_auc": _defined(average_precision(probabilities, labels)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "loss": binary_cross_entropy(probabilities, labels),
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "support": int(len(labels)),
    }


def balanced_accuracy(tp: int, fp: int, fn: int, tn: int) -> float:
    """(TPR + TNR) / 2 (Brodersen et al. 2010); a class without documents counts as recall 0."""
    return 0.5 * ((tp / (tp + fn) if tp + fn else 0.0) + (tn / (tn + fp) if tn + fp else 0.0))


def roc_auc(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(a random positive scores above a random negative), ties counting
    one half: the Mann-Whitney U statistic over average ranks (Hanley & McNeil 1982). NaN when a
    class is absent."""
    positive = labels == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(probabilities.astype(np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision: sum over distinct thresholds of
    (R_k - R_(k-1)) * P_k, thresholds from high to low (the definition of scikit-learn's
    average_precision_score). NaN when there is no positive document."""
    positive = (labels == 1).astype(np.float64)
    if not positive.sum():
        return float("nan")
    order = np.argsort(-probabilities.astype(np.float64), kind="stable")
    scores, hits = probabilities[order].astype(np.float64), positive[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # the last index of each distinct score
    tp = np.cumsum(hits)[last]
    precision, recall = tp / (last + 1), tp / positive.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def balanced_threshold(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(threshold, balanced accuracy): the decision threshold t (predict positive when p >= t) that
    maximises balanced accuracy on these documents, the midpoint between neighbouring distinct
    probabilities (the lowest such when several tie).

    Raises:
        ValueError: a class is absent (no threshold can be chosen).
    """
    positive = labels == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        raise ValueError(f"threshold auto needs both classes in the validation part; it has {n_pos} positive and "
                         f"{n_neg} negative documents")
    scores = np.unique(probabilities.astype(np.float64))
    candidates = np.r_[0.0, (scores[:-1] + scores[1:]) / 2, 1.0] if len(scores) > 1 else np.array([0.0, 1.0])
    p = probabilities.astype(np.float64)[None, :]
    predicted = p >= candidates[:, None]  # (thresholds, documents)
    tpr = (predicted & positive).sum(axis=1) / n_pos
    tnr = (~predicted & ~positive).sum(axis=1) / n_neg
    value = (tpr + tnr) / 2
    best = int(np.argmax(value))
    return float(candidates[best]), float(value[best])


def _defined(value: float) -> float | None:
    return None if np.isnan(value) else value
