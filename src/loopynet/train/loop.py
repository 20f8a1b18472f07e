"""The training loop: mini-batch BPTT with RMSprop and binary cross-entropy, like Keras' `fit`
(NLP in Action 8.2-8.3): a progress bar per epoch with loss/accuracy, validation after each epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from loopynet.config import TrainConfig
from loopynet.data.batching import batches
from loopynet.data.vocab import EncodedDocs
from loopynet.train.metrics import binary_metrics


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """RMSprop with Keras' constants (lr 1e-3, rho 0.9, eps 1e-7; Tieleman & Hinton 2012, lecture 6.5).

    `torch.optim.RMSprop` adds eps outside the square root, as Keras 2 (the book's) did.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.RMSprop(trainable, lr=config.lr, alpha=config.rho, eps=config.epsilon)


@torch.no_grad()
def predict_proba(model: torch.nn.Module, docs: EncodedDocs, maxlen: int, batch_size: int = 256) -> np.ndarray:
    """(N,) float64 P(positive) for every document, in document order, model in eval mode."""
    model.eval()
    out = [torch.sigmoid(model(torch.from_numpy(ids))).double().numpy() for ids, _ in batches(docs, batch_size, maxlen)]
    return np.concatenate(out) if out else np.zeros(0)


def fit(model: torch.nn.Module, train: EncodedDocs, validation: EncodedDocs | None, config: TrainConfig,
        maxlen: int, progress: bool = True, on_epoch_end: Callable[[dict], None] | None = None) -> list[dict]:
    """Train `model` for `config.epochs` epochs; returns the history, one dict per epoch.

    Each epoch visits the training documents in a fresh seeded order (Keras' shuffle=True), in
    batches of `config.batch_size`; the gradient of each batch's mean loss is backpropagated
    through all `maxlen` steps and applied once (the chapter's 8.1.2 rule). History keys follow
    Keras: loss, accuracy, val_loss, val_accuracy; plus epoch, seconds, samples_per_second.

    Raises:
        TrainingError: the loss became NaN or infinite (the message names epoch and batch).
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    optimizer = make_optimizer(model, config)
    history = []
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        loss, accuracy = _train_epoch(model, optimizer, train, config, maxlen, rng, epoch, progress)
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "loss": loss, "accuracy": accuracy}
        if validation is not None and len(validation):
            val = binary_metrics(predict_proba(model, validation, maxlen), validation.labels)
            record.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
        record.update(seconds=seconds, samples_per_second=len(train) / seconds)
        history.append(record)
        if progress:
            print(_epoch_line(record, config.epochs), flush=True)
        if on_epoch_end:
            on_epoch_end(record)
    return history


def _train_epoch(model, optimizer, train, config, maxlen, rng, epoch, progress) -> tuple[float, float]:
    model.train()
    order = rng.permutation(len(train))
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(total=len(train), desc=f"Epoch {epoch}/{config.epochs}", unit="sample", disable=not progress,
               leave=False, dynamic_ncols=True)
    for step, (ids, labels) in enumerate(batches(train, config.batch_size, maxlen, order)):
        y = torch.from_numpy(labels).float()
        logits = model(torch.from_numpy(ids))
        loss = F.binary_cross_entropy_with_logits(logits, y)
        if not math.isfinite(loss.item()):
            raise TrainingError(f"loss became {loss.item()} at epoch {epoch}, batch {step + 1}; "
                                "nothing was saved. Try a lower --lr or check the input vectors for NaN.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(labels)
        correct += int(((logits >= 0).long() == torch.from_numpy(labels)).sum())
        seen += len(labels)
        bar.update(len(labels))
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", accuracy=f"{correct / seen:.4f}", refresh=False)
    bar.close()
    return total_loss / max(seen, 1), correct / max(seen, 1)


def _epoch_line(record: dict, epochs: int) -> str:
    parts = [f"Epoch {record['epoch']}/{epochs}", f"{record['seconds']:.0f}s",
             f"loss: {record['loss']:.4f}", f"accuracy: {record['accuracy']:.4f}"]
    if "val_loss" in record:
        parts += [f"val_loss: {record['val_loss']:.4f}", f"val_accuracy: {record['val_accuracy']:.4f}"]
    return " - ".join(parts)
