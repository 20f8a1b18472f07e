"""Tagging metrics: entity-level precision/recall/F1 (seqeval, conlleval convention) and token accuracy."""

from __future__ import annotations

from collections import Counter

from loopynet.data.conll import iob2_tag
from loopynet.tasks.tagging.constraints import allowed_transitions, is_valid


def tag_metrics(true_ids: list[list[int]], pred_ids: list[list[int]], tag_names: list[str]) -> dict:
    """Entity-level precision/recall/F1 overall (micro) and per type by seqeval in the conlleval
    convention (default mode: an I- after O or another type starts an entity), plus token accuracy.
    IOBES tag names are compared as IOB2 (S- as B-, E- as I-). Also seqeval's strict mode on the
    model's own scheme (`strict`) and the count of predicted sentences that break it (`invalid_sequences`).
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
            "tokens": tokens, "sentences": len(y_true)} | strict_metrics(true_ids, pred_ids, tag_names)


def tag_scheme_of(tag_names: list[str]) -> str:
    """"iobes" when any tag name starts with E- or S-, else "iob2"."""
    return "iobes" if any(t[:2] in ("E-", "S-") for t in tag_names) else "iob2"


def strict_metrics(true_ids: list[list[int]], pred_ids: list[list[int]], tag_names: list[str]) -> dict:
    """seqeval's strict mode on the model's own scheme (an entity counts only when its tags form a valid
    chunk: `S-PER E-PER` is not one PER), and how many predicted sentences break the scheme."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2, IOBES

    scheme = tag_scheme_of(tag_names)
    y_true = [[tag_names[i] for i in s] for s in true_ids]
    y_pred = [[tag_names[i] for i in s] for s in pred_ids]
    options = {"mode": "strict", "scheme": IOBES if scheme == "iobes" else IOB2, "zero_division": 0}
    allowed = allowed_transitions(tag_names, scheme)
    return {"strict": {"precision": float(precision_score(y_true, y_pred, **options)),
                       "recall": float(recall_score(y_true, y_pred, **options)),
                       "f1": float(f1_score(y_true, y_pred, **options)), "scheme": scheme},
            "invalid_sequences": sum(not is_valid(s, allowed) for s in pred_ids)}


def majority_accuracy(docs) -> float:
    """Token accuracy of always predicting the most frequent tag of `docs` (TaggedDocs)."""
    counts = Counter(int(t) for s in docs.tags for t in s)
    return max(counts.values()) / max(sum(counts.values()), 1) if counts else 0.0
