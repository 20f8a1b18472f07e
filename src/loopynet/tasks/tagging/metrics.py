"""Tagging metrics: entity-level precision/recall/F1 (seqeval, conlleval convention) and token accuracy."""

from __future__ import annotations

from collections import Counter

from loopynet.data.conll import iob2_tag


def tag_metrics(true_ids: list[list[int]], pred_ids: list[list[int]], tag_names: list[str]) -> dict:
    """Entity-level precision/recall/F1 overall (micro) and per type by seqeval in the conlleval
    convention (default mode: an I- after O or another type starts an entity), plus token accuracy.
    IOBES tag names are compared as IOB2 (S- as B-, E- as I-).
    """
    from seqeval.metrics import classification_report

    names = [iob2_tag(t) for t in tag_names]
    y_true = [[names[i] for i in s] for s in true_ids]
    y_pred = [[names[i] for i in s] for s in pred_ids]
    tokens = sum(len(s) for s in y_true)
    correct = sum(a == b for t, p in zip(y_true, y_pred) for a, b in zip(t, p))
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    per_type = {k: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
                    "support": int(v["support"])}
                for k, v in report.items() if not k.endswith(" avg")}
    return {"precision": float(micro["precision"]), "recall": float(micro["recall"]), "f1": float(micro["f1-score"]),
            "entities": int(micro["support"]), "per_type": per_type, "token_accuracy": correct / max(tokens, 1),
            "tokens": tokens, "sentences": len(y_true)}


def majority_accuracy(docs) -> float:
    """Token accuracy of always predicting the most frequent tag of `docs` (TaggedDocs)."""
    counts = Counter(int(t) for s in docs.tags for t in s)
    return max(counts.values()) / max(sum(counts.values()), 1) if counts else 0.0
