"""Training controls: resume == uninterrupted, checkpoints, early stopping with best-weights
restore, Adam, gradient clipping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from loopynet.config import ModelConfig, TrainConfig
from loopynet.data.vocab import EncodedDocs
from loopynet.models.classifier import BookClassifier
from loopynet.train.checkpoint import load_checkpoint
from loopynet.tasks.classification.task import BinaryTask
from loopynet.train.loop import fit, make_optimizer

MAXLEN = 10


def docs(n: int, seed: int) -> EncodedDocs:
    """Documents whose label is whether token 1 occurs more often than token 2."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 14, n)
    ids = rng.integers(1, 20, lengths.sum()).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    labels = np.array([int((ids[a:b] == 1).sum() > (ids[a:b] == 2).sum()) for a, b in zip(offsets[:-1], offsets[1:])])
    return EncodedDocs(ids, offsets, labels)


TRAIN, VAL = docs(64, 1), docs(32, 2)


def model() -> BookClassifier:
    return BookClassifier(ModelConfig(units=5, maxlen=MAXLEN, embedding_dims=4), torch.randn(20, 4, generator=torch.Generator().manual_seed(0)))


def strip_time(history):
    return [{k: v for k, v in h.items() if k not in ("seconds", "samples_per_second", "val_seconds")} for h in history]


class Killed(Exception):
    pass


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, ema_decay):
    config = TrainConfig(epochs=4, batch_size=8, seed=3, ema_decay=ema_decay, lr_decay=0.5)
    straight = model()
    full = fit(straight, BinaryTask(MAXLEN), config, TRAIN, VAL, progress=False, checkpoint_dir=tmp_path / "a")

    def kill_after_two(record):
        if record["epoch"] == 2:
            raise Killed

    interrupted = model()
    with pytest.raises(Killed):
        fit(interrupted, BinaryTask(MAXLEN), config, TRAIN, VAL, progress=False, on_epoch_end=kill_after_two, checkpoint_dir=tmp_path / "b")
    assert len(load_checkpoint(tmp_path / "b")["history"]) == 2
    resumed = model()
    history = fit(resumed, BinaryTask(MAXLEN), config, TRAIN, VAL, progress=False, checkpoint_dir=tmp_path / "b", resume=True)
    assert strip_time(history) == strip_time(full)
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), straight.state_dict().values()))


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    config = TrainConfig(epochs=1, batch_size=8)
    a, b = model(), model()
    assert strip_time(fit(a, BinaryTask(MAXLEN), config, TRAIN, VAL, progress=False)) == strip_time(
        fit(b, BinaryTask(MAXLEN), config, TRAIN, VAL, progress=False, checkpoint_dir=tmp_path, resume=True))


def test_early_stopping_stops_and_restores_the_best_epoch():
    config = TrainConfig(epochs=30, batch_size=8, lr=0.05, patience=2)
    m = model()
    best_weights = {}

    def remember(record):
        best_weights[record["epoch"]] = {k: v.clone() for k, v in m.state_dict().items()}

    history = fit(m, BinaryTask(MAXLEN), config, TRAIN, VAL, progress=False, on_epoch_end=remember)
    losses = [h["val_loss"] for h in history]
    best = int(np.argmin(losses))
    assert len(history) == best + 1 + 2 < 30  # stopped `patience` epochs after the best
    assert all(torch.equal(v, best_weights[best + 1][k]) for k, v in m.state_dict().items())


def test_adam_and_unknown_optimizer():
    assert isinstance(make_optimizer(model(), TrainConfig(optimizer="adam")), torch.optim.Adam)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer(model(), TrainConfig(optimizer="sgd"))


def test_clip_norm_bounds_each_update():
    """With SGD-like RMSprop steps the change is bounded anyway, so check the clipped gradient itself."""
    m = model()
    seen = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm):
        params = list(params)
        original(params, max_norm)
        seen.append(torch.sqrt(sum((p.grad ** 2).sum() for p in params)).item())

    torch.nn.utils.clip_grad_norm_, saved = spy, original
    try:
        fit(m, BinaryTask(MAXLEN), TrainConfig(epochs=1, batch_size=8, clip_norm=1e-3), TRAIN, None, progress=False)
    finally:
        torch.nn.utils.clip_grad_norm_ = saved
    assert len(seen) == 8 and max(seen) <= 1e-3 * (1 + 1e-4)


def test_monitor_a_metric_to_maximise_and_reject_an_unknown_one():
    config = TrainConfig(epochs=30, batch_size=8, lr=0.05, patience=2, monitor="val_accuracy")
    history = fit(model(), BinaryTask(MAXLEN), config, TRAIN, VAL, progress=False)
    best = int(np.argmax([h["val_accuracy"] for h in history]))
    assert len(history) == best + 1 + 2 or len(history) == 30
    with pytest.raises(ValueError, match="monitor 'val_f1' is not a validation metric"):
        fit(model(), BinaryTask(MAXLEN), TrainConfig(epochs=1, batch_size=8, patience=1, monitor="val_f1"), TRAIN, VAL, progress=False)


def spy_optimizer(monkeypatch, m):
    """Capture the optimizer fit makes and the model's weights after each of its steps."""
    from loopynet.train import loop

    made, after_step = [], []

    def make(model_, config):
        optimizer = make_optimizer(model_, config)
        step = optimizer.step

        def recording_step(*args, **kwargs):
            step(*args, **kwargs)
            after_step.append({k: v.detach().clone() for k, v in m.state_dict().items()})

        optimizer.step = recording_step
        made.append(optimizer)
        return optimizer

    monkeypatch.setattr(loop, "make_optimizer", make)
    return made, after_step


def test_lr_decay_divides_each_epochs_learning_rate(monkeypatch):
    m = model()
    made, _ = spy_optimizer(monkeypatch, m)
    rates = []
    fit(m, BinaryTask(MAXLEN), TrainConfig(epochs=3, batch_size=8, lr=0.01, lr_decay=0.5), TRAIN, None, progress=False, on_epoch_end=lambda record: rates.append(made[0].param_groups[0]["lr"]))
    assert rates == pytest.approx([0.01, 0.01 / 1.5, 0.01 / 2.0])  # lr / (1 + decay * (epoch - 1))


def test_ema_validates_and_returns_the_moving_average_of_the_weights(monkeypatch):
    m = model()
    _, after_step = spy_optimizer(monkeypatch, m)
    history = fit(m, BinaryTask(MAXLEN), TrainConfig(epochs=1, batch_size=8, lr=0.05, ema_decay=0.5), TRAIN, VAL, progress=False)
    assert len(after_step) == 8  # 64 documents / 8
    assert history[0]["weights"] == "averaged"  # it validated better than the plain weights (see test_weight_average_selection)
    expected = after_step[0]  # the first update copies the weights, then avg = d avg + (1 - d) w with the
    for n, weights in enumerate(after_step[1:], start=1):  # warm-up d = min(0.5, (1 + n) / (10 + n))
        d = min(0.5, (1 + n) / (10 + n))
        expected = {k: d * expected[k] + (1 - d) * weights[k] for k in expected}
    final = m.state_dict()
    assert all(torch.allclose(final[k], expected[k], atol=1e-6) for k in expected)
    assert not all(torch.allclose(final[k], after_step[-1][k]) for k in expected)  # not the last weights
    plain = model()
    plain.load_state_dict(final)
    assert history[0]["val_loss"] == pytest.approx(BinaryTask(MAXLEN).validate(plain, VAL)["val_loss"], abs=1e-6)


def test_progress_names_the_epoch_whose_weights_were_kept(capsys):
    config = TrainConfig(epochs=30, batch_size=8, lr=0.05, patience=2)
    history = fit(model(), BinaryTask(MAXLEN), config, TRAIN, VAL, progress=True)
    best = min(history, key=lambda h: h["val_loss"])
    out = capsys.readouterr().out
    assert "Epoch 1/30 - " in out and "val_accuracy" in out  # one line per epoch (no bar: stderr is not a terminal)
    assert f"kept the weights of epoch {best['epoch']} (best val_loss {best['val_loss']:.4f})" in out
