"""The training loop, like Keras' `fit` (NLP in Action 8.2-8.3): mini-batch BPTT, a progress bar
per epoch with loss/accuracy, validation after each epoch; plus early stopping with best-weights
restore, a checkpoint every epoch, and resuming a killed run with the same result.

The loop knows the data only through a `Task` (how to batch documents, compute a batch's loss, and
validate; the tasks are in loopynet.tasks) and the network only through the model contract
(`loopynet.models.base.Network`).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from loopynet.config import OPTIMIZERS, ConfigError, TrainConfig, check_train
from loopynet.errors import UserError
from loopynet.device import device_of
from loopynet.models.base import NetworkLike
from loopynet.train.checkpoint import CheckpointError, check_resume, save_checkpoint
from loopynet.train.runtime import runtime_info, warn_runtime


class TrainingError(UserError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN or infinite, or diverged)."""


DIVERGENCE_BATCHES = 50  # the guard's reference: the mean loss of the run's first 50 batches
DIVERGENCE_FACTOR = 10.0  # a batch loss above 10x that reference stops the run


class DivergenceGuard:
    """Stops a run whose loss is not finite, or whose batch loss exceeds DIVERGENCE_FACTOR times the
    mean of its first DIVERGENCE_BATCHES batches (a learning rate too high for the network: losses of
    22,117 to 6e33 were seen with --lr 10 to 1e30). The reference is part of the training state, so a
    resumed run applies the same test.
    """

    def __init__(self):
        self.first: list[float] = []

    def check(self, loss: float, epoch: int, batch: int) -> None:
        """Raise TrainingError naming epoch and batch (1-based) when `loss` is not finite or diverged."""
        hint = ("nothing of this epoch was saved (the last checkpoint, if any, is the last good epoch). "
                "Try a lower --lr or a --clip-norm")
        if not math.isfinite(loss):
            raise TrainingError(f"loss became {loss} at epoch {epoch}, batch {batch}; {hint}, or check the "
                                "vectors for NaN.")
        if len(self.first) < DIVERGENCE_BATCHES:
            self.first.append(loss)
            return
        reference = sum(self.first) / len(self.first)
        if loss > DIVERGENCE_FACTOR * reference:
            raise TrainingError(f"training diverged at epoch {epoch}, batch {batch}: loss {loss:.4g} is more than "
                                f"{DIVERGENCE_FACTOR:g}x the mean of the first {DIVERGENCE_BATCHES} batches "
                                f"({reference:.4g}); {hint}.")


class Task(Protocol):
    """What the loop needs to know about the data and the loss. The last element of a batch holds one
    entry per document (the loop counts documents with its len)."""

    def batches(self, docs, batch_size: int, order: np.ndarray) -> Iterator[tuple]:
        """Yield batches of `docs` in `order`; each batch is passed to `loss`."""

    def loss(self, model: NetworkLike, batch: tuple) -> tuple[torch.Tensor, int, int]:
        """(mean loss of the batch, items predicted correctly, items)."""

    def validate(self, model: NetworkLike, docs) -> dict:
        """Validation metrics with Keras' names: at least val_loss and val_accuracy."""


def make_optimizer(model: NetworkLike, config: TrainConfig) -> torch.optim.Optimizer:
    """RMSprop with Keras' constants (lr 1e-3, rho 0.9, eps 1e-7; Tieleman & Hinton 2012, lecture 6.5),
    Adam (Kingma & Ba 2015) or Nadam (Adam with Nesterov momentum, Dozat 2016, "Incorporating Nesterov
    momentum into Adam"; torch.optim.NAdam with its momentum_decay 4e-3) with the same lr and eps.

    `torch.optim.RMSprop` adds eps outside the square root, as Keras 2 (the book's) did.

    Raises:
        ValueError: unknown optimizer name.
    """
    sparse = list(model.sparse_parameters())
    sparse_ids = {id(p) for p in sparse}
    trainable = [p for p in model.parameters() if p.requires_grad and id(p) not in sparse_ids]
    if config.optimizer == "rmsprop":
        dense = torch.optim.RMSprop(trainable, lr=config.lr, alpha=config.rho, eps=config.epsilon)
    elif config.optimizer == "adam":
        dense = torch.optim.Adam(trainable, lr=config.lr, eps=config.epsilon)
    elif config.optimizer == "nadam":
        dense = torch.optim.NAdam(trainable, lr=config.lr, eps=config.epsilon)
    else:
        raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}")
    if not sparse:
        return dense
    return SparseAndDense(torch.optim.SparseAdam(sparse, lr=config.lr, eps=config.epsilon), dense)


ONE_THREAD_STEP_ELEMENTS = 1 << 17  # below this many weights per tensor, one thread steps faster (see below)


def steps_on_one_thread(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer_step` runs this optimizer's step on one thread: every parameter is on the CPU and
    holds fewer than 2^17 elements.

    torch runs elementwise ops such as `sqrt` in parallel from a few thousand elements, and waking the second
    OpenMP thread costs more than such an op saves (60-80 us each with `OMP_WAIT_POLICY=PASSIVE`, which the
    CLI sets for the compiled kernels): RMSprop over the book network's 37,551 weights took 435 us on 2
    threads and 99 us on one (PASSIVE; 126 vs 101 us with OpenMP's default; benchmarks/README, "What the
    second thread buys"). The values do not change: elementwise ops give the same bits on any thread count.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return all(p.device.type == "cpu" and p.numel() < ONE_THREAD_STEP_ELEMENTS for p in params)


def optimizer_step(optimizer: torch.optim.Optimizer, one_thread: bool) -> None:
    """`optimizer.step()`, on one torch thread when `one_thread` (the thread count is restored after)."""
    threads = torch.get_num_threads()
    if not one_thread or threads == 1:
        optimizer.step()
        return
    torch.set_num_threads(1)
    try:
        optimizer.step()
    finally:
        torch.set_num_threads(threads)


class SparseAndDense:
    """Two optimizers stepped together: SparseAdam for parameters with sparse gradients (fine-tuned
    embedding rows: only the rows a batch uses are read and written) and the configured one for the
    rest. Dense Adam over an 18M-weight table costs ~100 ms per step; SparseAdam touches ~5k rows.
    """

    def __init__(self, sparse: torch.optim.Optimizer, dense: torch.optim.Optimizer):
        self.sparse, self.dense = sparse, dense

    @property
    def param_groups(self):
        return self.dense.param_groups + self.sparse.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.sparse.zero_grad(set_to_none=set_to_none)
        self.dense.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.sparse.step()
        self.dense.step()

    def state_dict(self) -> dict:
        return {"sparse": self.sparse.state_dict(), "dense": self.dense.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.sparse.load_state_dict(state["sparse"])
        self.dense.load_state_dict(state["dense"])


def ema_decay_at(decay: float, updates: int) -> float:
    """The decay of the `updates`+1-th update of the weight average: min(decay, (1 + n) / (10 + n)) after
    n updates (the warm-up of TensorFlow's `tf.train.ExponentialMovingAverage(num_updates=...)`). Without
    it a 0.999 average is still ~60% the random initial weights after 500 steps (a 2,000-sentence,
    8-epoch tagger run scored F1 0.11 against 0.77 without averaging)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


def warmed_up_ema(decay: float) -> Callable:
    """`multi_avg_fn` for `torch.optim.swa_utils.AveragedModel`: the exponential moving average with the
    warm-up of `ema_decay_at`, updated in place as torch's own `get_ema_multi_avg_fn` does (lerp: one pass,
    no temporaries; `averaged * d + current * (1 - d)` allocated two (V, E) tensors and took 57 ms per step of
    the imdb-rnn recipe on 2 threads against 4.7 ms for the lerp, its 55,000 x 300 fine-tuned table included)."""
    @torch.no_grad()
    def average(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        weight = 1.0 - ema_decay_at(decay, int(updates))
        for a, c in zip(averaged, current):
            a.lerp_(c, weight)
    return average


class _State:
    """Everything that makes a resumed run identical to an uninterrupted one."""

    def __init__(self, model, optimizer, config, settings: dict):
        self.model, self.optimizer, self.config, self.settings = model, optimizer, config, settings
        self.rng = np.random.default_rng(config.seed)
        self.history: list[dict] = []
        self.best: dict | None = None  # {"value" of config.monitor, "epoch", "weights"}
        self.guard = DivergenceGuard()
        torch.manual_seed(config.seed)
        self.averaged = AveragedModel(model, multi_avg_fn=warmed_up_ema(config.ema_decay)) if config.ema_decay else None
        self.one_thread_step = steps_on_one_thread(optimizer)

    def to_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "numpy_rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "history": self.history, "best": self.best, "guard": self.guard.first,
                "settings": self.settings, "runtime": runtime_info(),
                "cuda_rng": torch.cuda.get_rng_state() if device_of(self.model).type == "cuda" else None,
                "averaged": self.averaged.state_dict() if self.averaged is not None else None}

    def restore(self, saved: dict) -> None:
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(saved["torch_rng"])
        if saved.get("cuda_rng") is not None and device_of(self.model).type == "cuda":
            torch.cuda.set_rng_state(saved["cuda_rng"])
        self.history, self.best = saved["history"], saved["best"]
        self.guard.first = list(saved.get("guard", []))
        if self.averaged is not None:
            if saved.get("averaged") is None:
                raise CheckpointError("the checkpoint was saved without --ema-decay; resume with the same settings")
            self.averaged.load_state_dict(saved["averaged"])


def fit(model: NetworkLike, task: Task, config: TrainConfig, train, validation=None, *, progress: bool = True,
        on_epoch_end: Callable[[dict], None] | None = None, checkpoint_dir: str | Path | None = None,
        resume: bool = False, settings: dict | None = None) -> list[dict]:
    """Train `model` on `train` (documents `task` can batch) for `config.epochs` epochs, validating on
    `validation` (None: no validation); returns the history, one dict per epoch.

    Each epoch visits the training documents in a fresh seeded order (Keras' shuffle=True), in
    batches of `config.batch_size`; the gradient of each batch's mean loss is backpropagated through
    all time steps and applied once (the chapter's 8.1.2 rule), after clipping its global norm to
    `config.clip_norm` when set. History keys follow Keras: loss, accuracy, val_loss, val_accuracy;
    plus epoch, seconds (training, without validation), samples_per_second, val_seconds.

    Early stopping (`config.patience` epochs without a better `config.monitor`, default val_loss;
    metrics whose name has no "loss" count as better when higher) stops and, with
    `config.restore_best`, puts back the weights of the best epoch. `config.lr_decay` lowers the learning
    rate per epoch (`epoch_lr`). With `config.ema_decay` an exponential moving average of the weights is
    kept beside them (torch.optim.swa_utils.AveragedModel; it never changes the training trajectory):
    each validation scores both the average and the plain weights and keeps the better on
    `config.monitor` (the average on a tie; `_validate`), recorded as the epoch's "weights"
    ("averaged" or "plain") with both values; best-epoch selection and the returned weights use the
    kept ones (without validation, the average). With `checkpoint_dir`, the whole
    training state is saved there after every epoch, with `settings` (the run's full configuration as
    nested JSON values; default: `config`'s fields under "train"); `resume=True` continues from it when
    it was written with the same settings (`check_resume`; only `epochs` may change), warning when
    the thread count or kernel path differs (`loopynet.train.runtime`).

    Raises:
        TrainingError: the loss became NaN or infinite, or diverged (`DivergenceGuard`; the message names
            epoch and batch; the checkpoint keeps the last good epoch).
        ConfigError: a setting outside its range (`loopynet.config.check_train`).
        ValueError: `config.monitor` is not a validation metric, or a resumed checkpoint lacks the EMA
            weights that `config.ema_decay` needs.
        CheckpointError: with `resume`, a damaged checkpoint or one written with other settings.
    """
    check_train(config)
    if config.lr_decay and config.epochs == 1:
        warnings.warn(f"lr_decay {config.lr_decay} has no effect with 1 epoch (the rate changes per epoch)",
                      UserWarning, stacklevel=2)
    if 0 < len(train) < config.batch_size:
        warnings.warn(f"{len(train)} training documents are fewer than one batch of {config.batch_size}: each epoch is "
                      "one optimizer step (length buckets hold fewer documents still)", UserWarning, stacklevel=2)
    if config.patience is not None and validation is not None and not len(validation):
        raise ValueError(f"patience {config.patience} needs validation documents, and there are none")
    settings = settings if settings is not None else {"train": dataclasses.asdict(config)}
    state = _State(model, make_optimizer(model, config), config, settings)
    if resume and checkpoint_dir and (saved := check_resume(checkpoint_dir, settings)) is not None:
        warn_runtime(saved.get("runtime"), "resuming")
        try:
            state.restore(saved)
        except (RuntimeError, KeyError) as err:  # load_state_dict: other shapes / parameter names
            detail = " ".join(str(err).split())
            detail = detail if len(detail) <= 300 else detail[:300] + "..."
            raise CheckpointError(f"the checkpoint in {checkpoint_dir} was written by a run with other settings "
                                  f"({detail}); resume with that run's settings, or remove the checkpoint folder to "
                                  "start afresh") from None
    while len(state.history) < config.epochs and not _should_stop(state):
        epoch = len(state.history) + 1
        start = time.perf_counter()
        loss, accuracy = _train_epoch(state, train, task, epoch, progress)
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "loss": loss, "accuracy": accuracy}
        if validation is not None and len(validation):
            val_start = time.perf_counter()
            metrics, kept = _validate(state, task, validation)
            record |= metrics
            record["val_seconds"] = time.perf_counter() - val_start
            _track_best(state, record, kept)
        record |= {"seconds": seconds, "samples_per_second": len(train) / seconds}
        state.history.append(record)
        if checkpoint_dir:
            save_checkpoint(checkpoint_dir, state.to_dict())
        if progress:
            print(_epoch_line(record, config.epochs), flush=True)
        if on_epoch_end:
            on_epoch_end(record)
    if config.restore_best and config.patience is not None and state.best is not None:
        model.load_state_dict(state.best["weights"])
        for record in state.history:
            record["kept"] = record["epoch"] == state.best["epoch"]
        if progress:
            which = state.history[state.best["epoch"] - 1].get("weights")  # averaged / plain; None: no average
            print(f"kept the {which + ' ' if which else ''}weights of epoch {state.best['epoch']} "
                  f"(best {config.monitor} {state.best['value']:.4f})", flush=True)
    elif state.averaged is not None and state.history and state.history[-1].get("weights") != "plain":
        model.load_state_dict(state.averaged.module.state_dict())
    return state.history


def _validate(state: _State, task: Task, validation) -> tuple[dict, torch.nn.Module]:
    """The validation metrics of the weights to keep, and those weights. Without a weight average: the
    model's. With one: both the average and the plain weights are validated and the better on
    `config.monitor` is kept (the average on a tie), so averaging can never score worse on validation than
    `--ema-decay 0` at the same epoch (the plain weights are that run's); the record says which
    ("weights") and gives both values ("<monitor>_averaged", "<monitor>_plain")."""
    if state.averaged is None:
        return task.validate(state.model, validation), state.model
    monitor = state.config.monitor
    averaged = _monitored(task.validate(state.averaged.module, validation), monitor)
    plain = _monitored(task.validate(state.model, validation), monitor)
    choice = "plain" if is_better(plain[monitor], averaged[monitor], monitor) else "averaged"
    metrics = plain if choice == "plain" else averaged
    both = {f"{monitor}_averaged": averaged[monitor], f"{monitor}_plain": plain[monitor]}
    return metrics | both | {"weights": choice}, state.model if choice == "plain" else state.averaged.module


def _monitored(metrics: dict, monitor: str) -> dict:
    """`metrics`, after checking that they hold `monitor` (ConfigError otherwise)."""
    if monitor not in metrics:
        raise ConfigError(f"monitor {monitor!r} is not a validation metric of this task; it reports {sorted(metrics)}")
    return metrics


def _track_best(state: _State, record: dict, kept: torch.nn.Module) -> None:
    monitor = state.config.monitor
    _monitored(record, monitor)
    if state.best is None or is_better(record[monitor], state.best["value"], monitor):
        weights = {k: v.detach().clone() for k, v in kept.state_dict().items()}
        state.best = {"value": record[monitor], "epoch": record["epoch"], "weights": weights}


def is_better(value: float, best: float, monitor: str) -> bool:
    """Whether `value` of metric `monitor` beats `best`: losses are minimised, other metrics maximised."""
    return value < best if "loss" in monitor else value > best


def best_record(history: list[dict], monitor: str = "val_loss") -> dict:
    """The first epoch record with the best `monitor` value (the epoch early stopping restores)."""
    best = history[0]
    for record in history[1:]:
        if is_better(record[monitor], best[monitor], monitor):
            best = record
    return best


def _should_stop(state: _State) -> bool:
    patience = state.config.patience
    return patience is not None and state.best is not None and len(state.history) - state.best["epoch"] >= patience


def _train_epoch(state: _State, train, task: Task, epoch: int, progress: bool) -> tuple[float, float]:
    model, optimizer, config = state.model, state.optimizer, state.config
    for group in optimizer.param_groups:
        group["lr"] = epoch_lr(config, epoch)
    model.train()
    order = state.rng.permutation(len(train))
    total_loss, correct, seen, docs = 0.0, 0, 0, 0
    bar = tqdm(total=len(train), desc=f"Epoch {epoch}/{config.epochs}", unit="doc",
               disable=not progress or not sys.stderr.isatty(),  # a redirected log gets the epoch lines only
               leave=False, dynamic_ncols=True)
    for step, batch in enumerate(task.batches(train, config.batch_size, order)):
        loss, batch_correct, items = task.loss(model, batch)
        state.guard.check(loss.item(), epoch, step + 1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.clip_norm:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad
                                            and (p.grad is None or not p.grad.is_sparse)], config.clip_norm)
        optimizer_step(optimizer, state.one_thread_step)
        if state.averaged is not None:
            state.averaged.update_parameters(model)
        batch_docs = len(batch[-1])
        total_loss += loss.item() * batch_docs
        correct, seen, docs = correct + batch_correct, seen + items, docs + batch_docs
        bar.update(batch_docs)
        bar.set_postfix(loss=f"{total_loss / docs:.4f}", accuracy=f"{correct / max(seen, 1):.4f}", refresh=False)
    bar.close()
    return total_loss / max(docs, 1), correct / max(seen, 1)


def epoch_lr(config: TrainConfig, epoch: int) -> float:
    """The learning rate of 1-based `epoch`: config.lr / (1 + config.lr_decay * (epoch - 1)) (Ma & Hovy 2016)."""
    return config.lr / (1.0 + config.lr_decay * (epoch - 1))


def _epoch_line(record: dict, epochs: int) -> str:
    parts = [f"Epoch {record['epoch']}/{epochs}", f"{record['seconds']:.0f}s",
             f"loss: {record['loss']:.4f}", f"accuracy: {record['accuracy']:.4f}"]
    parts += [f"{k}: {v:.4f}" for k, v in record.items() if k.startswith("val_")]
    parts += [f"weights: {record['weights']}"] if "weights" in record else []
    return " - ".join(parts)
