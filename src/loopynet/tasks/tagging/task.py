"""Tagging for the generic training loop: the `TaggingTask` (`loopynet.train.loop.Task`) over sentences
encoded and padded by `loopynet.tasks.tagging.encoding`.
"""

from __future__ import annotations

import numpy as np
import torch

from loopynet.device import device_of
from loopynet.models.tagger import SequenceTagger
from loopynet.tasks.tagging.encoding import TaggedDocs, pad_batch
from loopynet.tasks.tagging.metrics import tag_metrics


def _tensors(batch, model):
    device = device_of(model)
    return tuple(torch.from_numpy(a).to(device) for a in batch)


class TaggingTask:
    """`loopynet.train.loop.Task` for a `SequenceTagger`: the loss is summed over the real tokens of a
    batch and divided by its sentences; padding is masked out of loss and metrics.

    Batches are padded to their longest sentence. With `bucket` > 1, each run of `bucket * batch_size`
    sentences of the loop's (seeded) order is sorted by length before it is cut into batches, and the
    batches are visited in an order derived from the same permutation: less padding, same determinism.
    """

    def __init__(self, tag_names: list[str], eval_batch_size: int = 256, bucket: int = 20):
        self.tag_names = list(tag_names)
        self.eval_batch_size = eval_batch_size
        self.bucket = bucket

    def batches(self, docs: TaggedDocs, batch_size: int, order: np.ndarray):
        order = np.asarray(order)
        groups = []
        span = batch_size * max(self.bucket, 1)
        for start in range(0, len(order), span):
            chunk = order[start: start + span]
            if self.bucket > 1:
                chunk = chunk[np.argsort([len(docs.words[i]) for i in chunk], kind="stable")]
            groups += [chunk[i: i + batch_size] for i in range(0, len(chunk), batch_size)]
        if self.bucket > 1 and len(groups) > 1:  # visit batches in an order fixed by the permutation
            visit = np.random.default_rng(int(order[0])).permutation(len(groups))
            groups = [groups[i] for i in visit]
        for idx in groups:
            yield pad_batch(docs, idx)

    def loss(self, model: SequenceTagger, batch):
        words, cases, chars, lengths, tags = _tensors(batch, model)
        emissions = model(words, cases, chars, lengths)
        loss = model.loss_from_emissions(emissions, tags, lengths)
        mask = SequenceTagger.mask(lengths, tags.shape[1])
        # training accuracy from the per-step argmax (with a CRF: of the emissions, cheap; Viterbi in validate)
        correct = int(((emissions.detach().argmax(-1) == tags) & mask).sum())
        return loss, correct, int(lengths.sum())

    @torch.no_grad()
    def predict(self, model: SequenceTagger, docs: TaggedDocs) -> tuple[list[list[int]], float]:
        """(tag ids per sentence in document order, mean loss per sentence), model in eval mode."""
        model.eval()
        order = np.arange(len(docs))
        order = order[np.argsort([len(w) for w in docs.words], kind="stable")]
        predictions: list[list[int] | None] = [None] * len(docs)
        total = 0.0
        for start in range(0, len(order), self.eval_batch_size):
            idx = order[start: start + self.eval_batch_size]
            words, cases, chars, lengths, tags = _tensors(pad_batch(docs, idx), model)
            emissions = model(words, cases, chars, lengths)
            total += float(model.loss_from_emissions(emissions, tags, lengths)) * len(idx)
            for i, p in zip(idx, model.decode_emissions(emissions, lengths)):
                predictions[i] = p
        return predictions, total / max(len(docs), 1)

    def validate(self, model: SequenceTagger, docs: TaggedDocs) -> dict:
        predictions, loss = self.predict(model, docs)
        metrics = tag_metrics([list(t) for t in docs.tags], predictions, self.tag_names)
        return {"val_loss": loss, "val_accuracy": metrics["token_accuracy"], "val_f1": metrics["f1"]}
