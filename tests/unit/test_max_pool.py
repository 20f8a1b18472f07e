"""The fused Dropout -> max head (models/max_pool.py, models/pool_kernel.c) against the torch ops it replaces."""

from __future__ import annotations

import pytest
import torch

from loopynet.config import ModelConfig
from loopynet.models import fast_kernel, max_pool
from loopynet.models.dropout import dropout_mask
from loopynet.models.recurrent_classifier import RecurrentClassifier, pool

KERNELS = fast_kernel.kernels()


@pytest.fixture(autouse=True)
def kernels_loaded():
    """The compiled kernels must load here (setup builds them): a failure, never a skip."""
    if KERNELS is None:
        pytest.fail("the compiled kernels did not load (see the RuntimeWarning)")
LENGTHS = torch.tensor([13, 5, 0, 1, 12, 7, 13])  # full, short, empty, one step


def outputs(dtype: torch.dtype, time_major: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(leaf, out (B, T, D) view of it): time-major storage as the fused cells return it, or batch-first."""
    torch.manual_seed(1)
    B, T, D = len(LENGTHS), 13, 10
    leaf = torch.randn((T, B, D) if time_major else (B, T, D), dtype=dtype, requires_grad=True)
    return leaf, (leaf.transpose(0, 1) if time_major else leaf)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("time_major", [True, False])
@pytest.mark.parametrize("p", [0.0, 0.3])
def test_fused_head_equals_torch_ops_with_the_same_mask(dtype, time_major, p):
    leaf, out = outputs(dtype, time_major)
    torch.manual_seed(7)
    fused = max_pool.dropout_max_pool(out, LENGTHS, p, KERNELS)
    torch.manual_seed(7)  # the same draw: the oracle applies the same keep-mask with torch ops
    keep = dropout_mask((out.shape[1], out.shape[0], out.shape[2]), p, KERNELS).transpose(0, 1).to(dtype) if p else 1
    expected = pool(out * (keep * (1 / (1 - p))) if p else out, LENGTHS, "max")
    assert torch.equal(fused, expected)
    assert torch.equal(fused[2], torch.zeros(out.shape[2], dtype=dtype))  # a row without steps pools to zeros
    d_pooled = torch.randn(fused.shape, dtype=dtype)
    (got,) = torch.autograd.grad(fused, leaf, d_pooled)
    (want,) = torch.autograd.grad(expected, leaf, d_pooled)
    assert torch.equal(got, want) and got.stride() == leaf.stride()
    assert int((got != 0).sum()) <= int((LENGTHS > 0).sum()) * out.shape[2]  # one position per row and feature


def test_padding_is_never_read():
    leaf, out = outputs(torch.float32, True)
    padded = out.detach().clone()
    for b, n in enumerate(LENGTHS.tolist()):
        padded[b, n:] = 1e9
    torch.manual_seed(3)
    a = max_pool.dropout_max_pool(out.detach(), LENGTHS, 0.5, KERNELS)
    torch.manual_seed(3)
    assert torch.equal(max_pool.dropout_max_pool(padded, LENGTHS, 0.5, KERNELS), a)


def test_ties_give_the_gradient_to_the_first_step_like_torch_max():
    out = torch.tensor([[[1.0, 2.0], [3.0, 2.0], [3.0, 0.5]]], requires_grad=True)  # (1, 3, 2): ties 3.0 and 2.0
    pooled = max_pool.dropout_max_pool(out, torch.tensor([3]), 0.0, KERNELS)
    (grad,) = torch.autograd.grad(pooled, out, torch.tensor([[10.0, 20.0]]))
    (oracle,) = torch.autograd.grad(out.max(1).values, out, torch.tensor([[10.0, 20.0]]))
    assert torch.equal(pooled, torch.tensor([[3.0, 2.0]])) and torch.equal(grad, oracle)
    assert torch.equal(grad, torch.tensor([[[0.0, 20.0], [10.0, 0.0], [0.0, 0.0]]]))


def test_nan_at_a_real_step_propagates_and_in_padding_does_not():
    out = torch.zeros(2, 4, 3)
    out[0, 1, 0] = float("nan")  # real step of row 0
    out[1, 3, 1] = float("nan")  # padding of row 1 (length 2)
    pooled = max_pool.dropout_max_pool(out, torch.tensor([4, 2]), 0.0, KERNELS)
    assert torch.isnan(pooled[0, 0]) and not torch.isnan(pooled[0, 1:]).any() and not torch.isnan(pooled[1]).any()


def test_masks_come_from_torch_generator_and_keep_one_minus_p():
    out, lengths = torch.randn(64, 50, 32), torch.full((64,), 50)
    torch.manual_seed(11)
    a = max_pool.dropout_max_pool(out, lengths, 0.3, KERNELS)
    torch.manual_seed(11)
    assert torch.equal(max_pool.dropout_max_pool(out, lengths, 0.3, KERNELS), a)
    assert not torch.equal(max_pool.dropout_max_pool(out, lengths, 0.3, KERNELS), a)  # the next draw differs
    torch.manual_seed(11)
    kept = dropout_mask((50, 64, 32), 0.3, KERNELS).double().mean()
    assert abs(float(kept) - 0.7) < 0.005  # 102,400 draws: sd 0.0014
    ones = max_pool.dropout_max_pool(torch.ones(64, 50, 32), lengths, 0.3, KERNELS)
    assert torch.equal(ones, torch.full_like(ones, 1 / 0.7))  # kept ones are scaled by 1 / (1 - p)


def test_p_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        max_pool.dropout_max_pool(torch.zeros(1, 2, 3), torch.tensor([2]), 1.0, KERNELS)


def network(dropout: float) -> RecurrentClassifier:
    config = ModelConfig(cell="lstm", units=6, bidirectional=True, head="max", dropout=dropout, maxlen=9,
                         embedding_dims=5, train_embeddings=True)
    return RecurrentClassifier(config, torch.randn(20, 5, generator=torch.Generator().manual_seed(0)), seed=0).double()


@pytest.mark.parametrize("training", [False, True])
def test_the_classifier_max_head_runs_fused_with_torch_ops_results(monkeypatch, training):
    ids = torch.tensor([[3, 4, 5, 6, 0, 0], [7, 8, 9, 10, 11, 12], [2, 0, 0, 0, 0, 0]])
    model = network(0.0).train(training)
    calls = []
    real_apply = max_pool.DropoutMaxPool.apply
    monkeypatch.setattr(max_pool.DropoutMaxPool, "apply", lambda *a: calls.append(1) or real_apply(*a))
    fused = model(ids)
    fused_grads = torch.autograd.grad(fused.sum(), [model.embeddings, *model.layers.parameters()])
    monkeypatch.setattr(max_pool, "fused_kernels", lambda out: None)  # the torch ops: nn.Dropout, masked amax
    plain = model(ids)
    plain_grads = torch.autograd.grad(plain.sum(), [model.embeddings, *model.layers.parameters()])
    assert calls == [1] and torch.equal(fused, plain)
    for a, b in zip(fused_grads, plain_grads):
        assert torch.equal(a.to_dense(), b.to_dense())


def test_torch_kernel_setting_keeps_the_torch_head(monkeypatch):
    monkeypatch.setenv(fast_kernel.ENV, "torch")
    calls = []
    monkeypatch.setattr(max_pool.DropoutMaxPool, "apply", lambda *a: calls.append(1))
    network(0.3).train()(torch.tensor([[3, 4, 5]]))
    assert calls == []


def test_a_second_derivative_is_refused_not_silently_zero():
    out = torch.randn(2, 4, 3, requires_grad=True)
    pooled = max_pool.dropout_max_pool(out, torch.tensor([4, 2]), 0.0, KERNELS)
    (grad,) = torch.autograd.grad(pooled.pow(2).sum(), out, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad.sum().backward()
