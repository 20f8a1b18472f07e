"""Binary classification for the generic training loop (`loopynet.train.loop.Task`): one sigmoid output
per document, binary cross-entropy on its logit (the chapter's model, NLP in Action 8.1.5), batching
(padded to maxlen, or length-bucketed for padding-safe networks) and prediction.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from loopynet.data.batching import batches, pad_trunc
from loopynet.data.vocab import EncodedDocs
from loopynet.device import device_of
from loopynet.models.base import Network
from loopynet.models.ngram import NgramEnsemble
from loopynet.tasks.classification.metrics import binary_metrics


class BinaryTask:
    """Batches padded or truncated to `maxlen` tokens; loss: binary cross-entropy of the logits (B,)."""

    def __init__(self, maxlen: int, eval_batch_size: int = 128):
        self.maxlen = maxlen
        self.eval_batch_size = eval_batch_size

    def batches(self, docs: EncodedDocs, batch_size: int, order: np.ndarray):
        return batches(docs, batch_size, self.maxlen, order)

    def loss(self, model, batch):
        device = device_of(model)
        ids, labels = (torch.from_numpy(a).to(device) for a in batch)
        logits = model(ids)
        loss = F.binary_cross_entropy_with_logits(logits, labels.float())
        correct = int(((logits >= 0).long() == labels).sum())
        return loss, correct, len(labels)

    def validate(self, model, docs: EncodedDocs) -> dict:
        metrics = binary_metrics(predict_proba(model, docs, self.maxlen, self.eval_batch_size), docs.labels)
        return {"val_loss": metrics["loss"], "val_accuracy": metrics["accuracy"]}


class BucketedTask(BinaryTask):
    """`BinaryTask` with length buckets: each epoch's shuffled order is cut into pools of `pool` batches,
    each pool sorted by length and cut into batches, the batches visited in a seeded order, and each
    batch trimmed to its longest review. Only for padding-safe networks (heads last/mean/max), where
    trailing padding changes nothing: IMDB reviews average ~230 tokens, so this does ~40% less work than
    batches padded to 400. Deterministic given the order (resume stays exact).
    """

    def __init__(self, maxlen: int, pool: int = 50, eval_batch_size: int = 128):
        super().__init__(maxlen, eval_batch_size)
        self.pool = pool

    def batches(self, docs: EncodedDocs, batch_size: int, order: np.ndarray):
        lengths = np.minimum(docs.lengths, self.maxlen)
        groups = []
        for start in range(0, len(order), batch_size * self.pool):
            pool = order[start : start + batch_size * self.pool]
            pool = pool[np.argsort(-lengths[pool], kind="stable")]
            groups += [pool[i : i + batch_size] for i in range(0, len(pool), batch_size)]
        seed = int(np.asarray(order[:8], dtype=np.int64).sum()) + len(order)
        for g in np.random.default_rng(seed).permutation(len(groups)):
            index = groups[g]
            ids = pad_trunc(docs, index, self.maxlen, trim=True)
            yield ids, docs.labels[index]


def classification_task(model: Network, maxlen: int) -> BinaryTask:
    """The training task of a classifier network: length-bucketed batches when it is padding-safe; an
    `NgramEnsemble` trains only its recurrent part, over that part's own maxlen."""
    if isinstance(model, NgramEnsemble):
        return classification_task(model.rnn, model.rnn.config.maxlen)
    return BucketedTask(maxlen) if model.padding_safe else BinaryTask(maxlen)


def predict_proba(model: Network, docs: EncodedDocs, maxlen: int, batch_size: int = 128) -> np.ndarray:
    """(N,) float64 P(positive) for every document, in document order, model in eval mode (on its device)."""
    return torch.sigmoid(torch.from_numpy(predict_logits(model, docs, maxlen, batch_size))).double().numpy()


@torch.no_grad()
def predict_logits(model: Network, docs: EncodedDocs, maxlen: int, batch_size: int = 128) -> np.ndarray:
    """(N,) float32 logits of every document, in document order, model in eval mode; batches go to the
    model's device, logits come back to the CPU. Padding-safe models (trailing padding changes nothing)
    get batches of similar length, each trimmed to its longest document."""
    model.eval()
    device = device_of(model)
    trim = model.padding_safe
    order = np.argsort(np.minimum(docs.lengths, maxlen), kind="stable") if trim else np.arange(len(docs))
    logits = np.zeros(len(docs), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        ids = torch.from_numpy(pad_trunc(docs, index, maxlen, trim=trim)).to(device)
        logits[index] = model(ids).cpu().numpy()
    return logits
