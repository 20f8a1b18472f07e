"""Weight averaging (`--ema-decay`) keeps, at each validation, whichever of the averaged and the plain
weights scores better on the monitored metric; the plain weights are exactly those of a run without
averaging (the average never changes the training trajectory)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from loopynet.config import ModelConfig, TrainConfig
from loopynet.data.vocab import EncodedDocs
from loopynet.models.classifier import BookClassifier
from loopynet.tasks.classification.task import BinaryTask
from loopynet.train.loop import fit


class Scalar(torch.nn.Module):
    """One weight w, starting at 0."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def sparse_parameters(self):
        return iter(())


class PullTask:
    """Training pulls w towards 1 (batch loss (w - 1)^2); validation scores (w - target)^2, so a target of
    1 rewards the newest weights and a target below 0 the lagging average."""

    def __init__(self, target: float):
        self.target = target

    def batches(self, docs, batch_size, order):
        for start in range(0, len(order), batch_size):
            yield (order[start:start + batch_size],)

    def loss(self, model, batch):
        return ((model.w - 1.0) ** 2).sum(), 0, 1

    def validate(self, model, docs):
        return {"val_loss": float(((model.w - self.target) ** 2).item()), "val_accuracy": 0.0}


TRAIN, VAL = list(range(8)), list(range(2))


def run(target: float, ema_decay: float, steps: list | None = None, **overrides) -> tuple[Scalar, list[dict]]:
    """Train a Scalar (default: 3 epochs of 4 Adam steps); `steps` collects w after each step."""
    config = TrainConfig(**({"epochs": 3, "batch_size": 2, "optimizer": "adam", "lr": 0.05, "seed": 0,
                             "ema_decay": ema_decay} | overrides))
    model = Scalar()
    hook = register_optimizer_step_post_hook(
        lambda *_: steps.append(model.w.item()) if steps is not None else None)
    try:
        history = fit(model, PullTask(target), config, TRAIN, VAL, progress=False)
    finally:
        hook.remove()
    return model, history


def average_of(steps: list[float], decay: float) -> float:
    """The warmed-up exponential moving average of `steps` (the first update copies the weights; then
    decay min(decay, (1 + n) / (10 + n)) after n updates, TensorFlow's ExponentialMovingAverage warm-up)."""
    average = steps[0]
    for n, w in enumerate(steps[1:], start=1):
        d = min(decay, (1 + n) / (10 + n))
        average = d * average + (1 - d) * w
    return average


def test_plain_weights_are_kept_when_they_validate_better():
    model, history = run(target=1.0, ema_decay=0.9)
    plain_model, plain_history = run(target=1.0, ema_decay=0.0)
    assert [h["weights"] for h in history] == ["plain"] * 3
    assert all(h["val_loss"] == h["val_loss_plain"] < h["val_loss_averaged"] for h in history)
    assert [h["val_loss"] for h in history] == [h["val_loss"] for h in plain_history]
    assert torch.equal(model.w, plain_model.w)  # the run without averaging, bit for bit
    assert "weights" not in plain_history[0] and "val_loss_plain" not in plain_history[0]


def test_averaged_weights_are_kept_when_they_validate_better():
    steps: list[float] = []
    model, history = run(target=-1.0, ema_decay=0.9, steps=steps)
    assert len(steps) == 12
    assert [h["weights"] for h in history] == ["averaged"] * 3
    assert all(h["val_loss"] == h["val_loss_averaged"] < h["val_loss_plain"] for h in history)
    assert model.w.item() == pytest.approx(average_of(steps, 0.9), abs=1e-6) and model.w.item() < steps[-1]
    assert history[-1]["val_loss_plain"] == pytest.approx((steps[-1] + 1.0) ** 2, abs=1e-6)


def test_the_choice_is_made_per_epoch_and_early_stopping_restores_the_kept_weights():
    """Target 0.5: early on the plain weights are nearer (the average lags), later the average is (the
    plain weights overshoot towards 1). Early stopping restores the weights kept at the best epoch."""
    steps: list[float] = []
    model, history = run(target=0.5, ema_decay=0.9, steps=steps, epochs=6, patience=2)
    choices = [h["weights"] for h in history]
    assert set(choices) == {"plain", "averaged"}, choices
    for h in history:
        best_of_two = min(h["val_loss_plain"], h["val_loss_averaged"])
        assert h["val_loss"] == best_of_two
        assert h["weights"] == ("plain" if h["val_loss_plain"] < h["val_loss_averaged"] else "averaged")
    best = min(history, key=lambda h: h["val_loss"])
    assert [h["kept"] for h in history] == [h is best for h in history]
    end = 4 * best["epoch"]  # 4 steps per epoch
    expected = steps[end - 1] if best["weights"] == "plain" else average_of(steps[:end], 0.9)
    assert model.w.item() == pytest.approx(expected, abs=1e-6)
    assert (model.w.item() - 0.5) ** 2 == pytest.approx(best["val_loss"], abs=1e-9)


def test_the_average_never_changes_the_training_trajectory():
    """A real network (the book's classifier, dropout on): with averaging the plain weights validate to
    exactly the values of a run without it, epoch by epoch, and the training losses are identical."""
    rng = np.random.default_rng(1)

    def docs(n):
        lengths = rng.integers(3, 14, n)
        ids = rng.integers(1, 20, lengths.sum()).astype(np.int32)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        labels = np.array([int((ids[a:b] == 1).sum() > (ids[a:b] == 2).sum())
                           for a, b in zip(offsets[:-1], offsets[1:])])
        return EncodedDocs(ids, offsets, labels)

    train, val = docs(64), docs(32)

    def history(ema_decay):
        net = BookClassifier(ModelConfig(units=5, maxlen=10, embedding_dims=4, dropout=0.2),
                             torch.randn(20, 4, generator=torch.Generator().manual_seed(0)))
        config = TrainConfig(epochs=3, batch_size=8, lr=0.05, seed=3, ema_decay=ema_decay)
        return fit(net, BinaryTask(10), config, train, val, progress=False)

    averaged, plain = history(0.9), history(0.0)
    assert [h["val_loss_plain"] for h in averaged] == [h["val_loss"] for h in plain]
    assert [h["loss"] for h in averaged] == [h["loss"] for h in plain]
