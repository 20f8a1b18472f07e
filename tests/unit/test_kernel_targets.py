"""The compiled kernels built for the portable targets a wheel installs (models/kernel_sources.py) compute
what the PyTorch path computes. kernel.c and cells_kernel.c pick their vector width and register tile
from the target (64 bytes and 8 rows with AVX-512, 32 and 4 with AVX2, 16 and 4 otherwise); the other
kernel tests run the library built for this CPU, so these build the others and run them here: the
compiler's default target (16-byte SSE2 vectors on x86-64) and x86-64-v3 where this CPU runs it. Sizes
leave partial vectors and partial tiles at every width (H = 21, 11 batch rows)."""

from __future__ import annotations

import ctypes
import platform

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from loopynet.config import ModelConfig
from loopynet.models import cells, fast_kernel, kernel_sources
from loopynet.models.classifier import BookClassifier, dropout_mask

B, T, E, H, V = 11, 7, 5, 21, 30


def _targets() -> list[str]:
    runnable = ["baseline"]
    v3 = kernel_sources.INSTALL_VARIANTS["x86_64_v3"]
    if platform.machine().lower() in v3["machines"] and set(v3["cpu_features"]) <= set(
            kernel_sources.cpu_flags().split()):
        runnable.append("x86_64_v3")
    return runnable


@pytest.fixture(scope="module", params=_targets())
def library(request, tmp_path_factory):
    """The kernels built for one install target (the compiler's default flags plus the target's)."""
    path = tmp_path_factory.mktemp(request.param) / "kernels.so"
    flags = kernel_sources.FLAGS + tuple(kernel_sources.INSTALL_VARIANTS[request.param]["flags"])
    fast_kernel.build(fast_kernel.find_compiler(), flags, path)
    return fast_kernel.Kernels(ctypes.CDLL(str(path)), path, request.param)


@pytest.fixture
def use(monkeypatch, library):
    """use(path): the next calls run on the target's library ("target") or the PyTorch path ("torch")."""

    def route(path):
        monkeypatch.setattr(fast_kernel, "_loaded", library)
        if path == "torch":
            monkeypatch.setenv(fast_kernel.ENV, "torch")
        else:
            monkeypatch.delenv(fast_kernel.ENV, raising=False)

    return route


def _book_logits_and_grads(model, ids):
    model.zero_grad()
    logits = model(ids)
    (logits * torch.linspace(-1, 1, B, dtype=logits.dtype)).sum().backward()
    return [logits.detach().clone()] + [p.grad.clone() for p in model.parameters()]


def test_book_network_equals_the_torch_path(use):
    gen = torch.Generator().manual_seed(5)
    table = torch.randn(V, E, generator=gen, dtype=torch.float64)
    model = BookClassifier(ModelConfig(units=H, maxlen=T, embedding_dims=E, dropout=0.0), table, seed=1).double()
    ids = torch.randint(0, V, (B, T), generator=gen)
    use("target")
    ours = _book_logits_and_grads(model, ids)
    assert model(ids).grad_fn.name() == "CompiledBookNetworkBackward"
    use("torch")
    theirs = _book_logits_and_grads(model, ids)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_dropout_mask_is_the_same_bits_as_on_this_cpus_build(use, library):
    default = fast_kernel.load()  # this CPU's library (installed or built here)
    for n in (1, 15, 17, 100_003):
        torch.manual_seed(n)
        want = dropout_mask((n,), 0.3, default)
        torch.manual_seed(n)
        assert torch.equal(dropout_mask((n,), 0.3, library), want)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_fused_cells_equal_torch_nn(cls, library):
    gen = torch.Generator().manual_seed(6)
    rnn = cls(E, H, batch_first=True).double()
    x = torch.randn(B, T, E, generator=gen, dtype=torch.float64, requires_grad=True)
    dh = torch.randn(B, T, H, generator=gen, dtype=torch.float64)

    def out_and_grads(run):
        out, _ = run()
        return [out.detach()] + list(torch.autograd.grad((out * dh).sum(), [*rnn.parameters(), x]))

    cell = "lstm" if cls is nn.LSTM else "gru"
    ours = out_and_grads(lambda: cells.run(cell, cells.weights(rnn), library, x=x))
    theirs = out_and_grads(lambda: rnn(x))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_float32_training_step_within_float_rounding(use):
    """float32 (the training dtype, where the register tiles and tanh approximation run) against the torch
    path: one step's loss and gradients, dropout 0."""
    gen = torch.Generator().manual_seed(7)
    table = torch.randn(V, E, generator=gen)
    model = BookClassifier(ModelConfig(units=H, maxlen=T, embedding_dims=E, dropout=0.0), table, seed=2)
    ids, y = torch.randint(0, V, (B, T), generator=gen), torch.randint(0, 2, (B,), generator=gen).float()
    results = []
    for path in ("target", "torch"):
        use(path)
        model.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(ids), y)
        loss.backward()
        results.append([loss.detach()] + [p.grad.clone() for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
