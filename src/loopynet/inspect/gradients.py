"""Vanishing gradients, shown (NLP in Action 8.1.4): ‖∂loss/∂h_t‖ for every time step t on real batches.

A one-layer network reads the first T tokens of real reviews that have at least T tokens and is
scored from its LAST state only (head "last"), so h_t reaches the loss only through the recurrence
h_t -> h_{t+1} -> ... -> h_T. The cell is run one step at a time with every state h_t kept as its own
tensor, so autograd gives ∂loss/∂h_t for each t (for the LSTM: the hidden state h_t; its cell state
c_t carries the gradient too and is reported as `cell_state`). Per document the gradient vector's L2
norm is taken, then averaged over documents. Loss = binary cross-entropy summed over the batch (so
each document's gradient is its own).

`loopynet diagnose gradients` writes gradients.json and gradients.png (log scale, Agg backend).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from loopynet.config import ConfigError, DataConfig, ModelConfig
from loopynet.errors import InputError
from loopynet.io.artifact import write_json
from loopynet.io.atomic import atomic_file
from loopynet.models.recurrent_classifier import RecurrentClassifier


def stepwise_gradients(model: RecurrentClassifier, ids: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-step mean gradient norms for one batch of full-length documents (no padding).

    Returns {"hidden": (T,), and for LSTM "cell_state": (T,)}: mean over documents of ‖∂loss/∂h_t‖.
    """
    if model.config.layers != 1 or model.config.bidirectional:
        raise ConfigError("gradient diagnosis needs a one-layer unidirectional model")
    direction = model.layers[0][0]
    cell = model.config.cell
    x = F.embedding(ids, model.embeddings.detach())  # (B, T, E)
    B, T, _ = x.shape
    state = None
    hidden, cells = [], []
    for t in range(T):
        _, state = direction.run(x[:, t : t + 1], state)
        if cell == "lstm":
            h, c = state
            h.retain_grad(), c.retain_grad()
            hidden.append(h), cells.append(c)
        else:
            state.retain_grad()
            hidden.append(state)
    last = hidden[-1].reshape(B, -1)
    logits = (last @ model.dense_kernel + model.dense_bias)[:, 0]
    loss = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="sum")
    loss.backward()
    out = {"hidden": np.array([h.grad.reshape(B, -1).norm(dim=1).mean().item() for h in hidden])}
    if cells:
        out["cell_state"] = np.array([0.0 if c.grad is None else c.grad.reshape(B, -1).norm(dim=1).mean().item()
                                      for c in cells])  # c_T does not reach a loss read from h_T
    return out


def diagnose(data: str, vectors: str, cells: list[str], out: str | Path, maxlen: int = 400, units: int = 50,
             batches: int = 4, batch_size: int = 32, train_steps: int = 0, seed: int = 0,
             data_config: DataConfig | None = None, log: Callable[[str], None] = print) -> dict:
    """Measure ‖∂loss/∂h_t‖ per step for each cell on `batches` batches of real training reviews with at
    least `maxlen` tokens; write out/gradients.json and out/gradients.png; return the JSON dict.

    With `train_steps` > 0 each model is first trained that many Adam steps (lr 1e-3, batch_size, the
    same long reviews, other batches than the measured ones) and measured both before and after.
    Both files are written atomically (temp file + rename), the plot first.

    Raises:
        ValueError (ConfigError): a count below 1 (maxlen, units, batches, batch_size), train_steps or
            seed below 0, or `out` is an existing file; all checked before any data is read.
        CorpusError, VectorsError: unreadable data or vectors.
    """
    from loopynet.data.prepare import prepare_training_data
    from loopynet.data.vectors import load_vectors

    least = {"maxlen": (maxlen, 1), "units": (units, 1), "batches": (batches, 1), "batch_size": (batch_size, 1),
             "train_steps": (train_steps, 0), "seed": (seed, 0)}
    for name, (value, minimum) in least.items():
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if Path(out).exists() and not Path(out).is_dir():
        raise ConfigError(f"--out {out} is a file; diagnose writes a folder (gradients.png, gradients.json)")
    start = time.perf_counter()
    data_config = replace(data_config or DataConfig(), val_split=0.0)
    word_vectors = load_vectors(vectors)
    prepared = prepare_training_data(data, word_vectors, data_config, maxlen, seed, "train", log)
    docs = prepared.train
    long_docs = np.flatnonzero(docs.lengths >= maxlen)
    need = batch_size * (batches + train_steps)
    if len(long_docs) < batch_size * batches:
        raise InputError(f"only {len(long_docs)} training reviews have >= {maxlen} tokens; lower --maxlen or --batches")
    rng = np.random.default_rng(seed)
    long_docs = rng.permutation(long_docs)[:need] if need <= len(long_docs) else rng.permutation(long_docs)

    from loopynet.data.batching import pad_trunc

    def batch(k: int):
        index = long_docs[(k * batch_size) % len(long_docs):][:batch_size]
        return torch.from_numpy(pad_trunc(docs, index, maxlen)), torch.from_numpy(docs.labels[index])

    embeddings = torch.from_numpy(prepared.embeddings)
    result = {"maxlen": maxlen, "units": units, "batches": batches, "batch_size": batch_size,
              "documents": "training reviews with >= maxlen tokens (first maxlen tokens), head = last state",
              "vectors": str(vectors), "data_config": vars(data_config), "train_steps": train_steps, "cells": {}}
    for cell in cells:
        config = ModelConfig(units=units, dropout=0.0, embedding_dims=embeddings.shape[1], maxlen=maxlen,
                             cell=cell, head="last")
        model = RecurrentClassifier(config, embeddings, seed=seed)
        entry = {"init": _measure(model, batch, batches)}
        if train_steps:
            optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
            model.train()
            for k in range(train_steps):
                ids, labels = batch(batches + k)
                loss = F.binary_cross_entropy_with_logits(model(ids), labels.float())
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
            entry["trained"] = _measure(model, batch, batches)
        result["cells"][cell] = entry
        h = entry["init"]["hidden"]
        log(f"{cell}: ‖∂loss/∂h_t‖ at t=1: {h[0]:.3g}, t={maxlen // 2}: {h[maxlen // 2 - 1]:.3g}, t={maxlen}: {h[-1]:.3g}")
    result["seconds"] = time.perf_counter() - start
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plot(result, out / "gradients.png")
    write_json(out / "gradients.json", result)
    return result


def _measure(model: RecurrentClassifier, batch, batches: int) -> dict:
    model.eval()
    sums: dict[str, np.ndarray] = {}
    for k in range(batches):
        ids, labels = batch(k)
        model.zero_grad(set_to_none=True)
        for key, values in stepwise_gradients(model, ids, labels).items():
            sums[key] = sums.get(key, 0) + values / batches
    model.zero_grad(set_to_none=True)
    return {key: [float(v) for v in values] for key, values in sums.items()}


def plot(result: dict, path: Path) -> Path:
    """A log-scale line per cell (and stage) of the mean ‖∂loss/∂h_t‖ against t."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in ("init", "trained") if any(s in e for e in result["cells"].values())]
    fig, axes = plt.subplots(1, len(stages), figsize=(6.5 * len(stages), 4.5), squeeze=False, sharey=True)
    colors = {"rnn": "tab:red", "gru": "tab:green", "lstm": "tab:blue"}
    names = {"rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}
    for ax, stage in zip(axes[0], stages):
        for cell, entry in result["cells"].items():
            if stage not in entry:
                continue
            t = np.arange(1, len(entry[stage]["hidden"]) + 1)
            ax.semilogy(t, _positive(entry[stage]["hidden"]), color=colors.get(cell), label=f"{names.get(cell, cell)} ‖∂L/∂h_t‖")
            if "cell_state" in entry[stage]:
                ax.semilogy(t, _positive(entry[stage]["cell_state"]), color=colors.get(cell), linestyle="--",
                            label=f"{names.get(cell, cell)} ‖∂L/∂c_t‖ (cell state)")
        title = "at initialisation" if stage == "init" else f"after {result['train_steps']} training steps"
        ax.set_title(f"Gradient reaching step t from the last state, {title}", fontsize=9)
        ax.set_xlabel(f"time step t (the loss reads h_{result['maxlen']})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("mean ‖∂loss/∂h_t‖ per review (log)")
    fig.suptitle(f"IMDB reviews, first {result['maxlen']} tokens, {result['units']} units, "
                 f"{result['batches']}x{result['batch_size']} reviews", fontsize=10)
    fig.tight_layout()
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path


def _positive(values) -> np.ndarray:
    """Values with zeros (no gradient at all, e.g. c_T) as NaN, left out of a log plot."""
    values = np.asarray(values, dtype=float)
    return np.where(values > 0, values, np.nan)
