"""The fused GRU/LSTM recurrences (models/cells_kernel.c via models/cells.py) against the NumPy BPTT oracle
(models/reference.py), torch.nn.LSTM/GRU, and the pure-torch fallback of the classifier and the tagger."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from loopynet.config import ModelConfig, TaggerConfig, TrainConfig
from loopynet.models import cells, reference
from loopynet.models.recurrent_classifier import RecurrentClassifier
from loopynet.models.tagger import SequenceTagger
from loopynet.train.loop import make_optimizer

B, T, E, H = 11, 7, 5, 6  # 11 rows: one full 8-row tile and 3 single rows


def _kernels():
    kernels = cells.fused(nn.LSTM(1, 1), torch.zeros(1))
    if kernels is None:
        pytest.fail("the compiled kernels did not load (see the RuntimeWarning)")
    return kernels


def _run_fused(rnn, x, state, dh, dc_n=None):
    """(h (B, T, H), final state, grads {name: tensor}) of the fused path, with dloss/dh = dh (B, T, H) and
    dloss/dc_n = dc_n (LSTM)."""
    cell = "lstm" if isinstance(rnn, nn.LSTM) else "gru"
    out, state_n = cells.run(cell, cells.weights(rnn), _kernels(), x=x, state=state)
    loss = (out * dh).sum()
    if dc_n is not None:
        loss = loss + (state_n[1][0] * dc_n).sum()
    leaves = [x, *(state if isinstance(state, tuple) else (state,))]
    grads = torch.autograd.grad(loss, [*rnn.parameters(), *leaves])
    names = ["W_ih", "W_hh", "b_ih", "b_hh", "x", "h0", "c0"]
    return out, state_n, dict(zip(names, grads))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_lstm_matches_numpy_bptt(dtype, tol):
    gen = torch.Generator().manual_seed(1)
    rnn = nn.LSTM(E, H, batch_first=True).to(dtype)
    x = torch.randn(B, T, E, generator=gen, dtype=dtype, requires_grad=True)
    h0, c0 = (torch.randn(1, B, H, generator=gen, dtype=dtype, requires_grad=True) for _ in range(2))
    dh, dc_n = torch.randn(B, T, H, generator=gen, dtype=dtype), torch.randn(B, H, generator=gen, dtype=dtype)
    out, (h_n, c_n), grads = _run_fused(rnn, x, (h0, c0), dh, dc_n)

    p = {k: v.detach().double().numpy() for k, v in zip(["W_ih", "W_hh", "b_ih", "b_hh"], rnn.parameters())}
    hs, cache = reference.lstm_forward(x.detach().double().numpy(), p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"],
                                       h0[0].detach().double().numpy(), c0[0].detach().double().numpy())
    want = reference.lstm_bptt(dh.double().numpy(), cache, p["W_ih"], p["W_hh"], dc_n.double().numpy())
    np.testing.assert_allclose(out.detach().double().numpy(), hs, atol=tol, rtol=0)
    np.testing.assert_allclose(c_n[0].detach().double().numpy(), cache["cs"][-1], atol=tol, rtol=0)
    for name, ours in [("dW_ih", "W_ih"), ("dW_hh", "W_hh"), ("db_ih", "b_ih"), ("db_hh", "b_hh"), ("dx", "x")]:
        np.testing.assert_allclose(grads[ours].double().numpy(), want[name], atol=tol, rtol=tol, err_msg=name)
    np.testing.assert_allclose(grads["h0"][0].double().numpy(), want["dh0"], atol=tol, rtol=tol)
    np.testing.assert_allclose(grads["c0"][0].double().numpy(), want["dc0"], atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_gru_matches_numpy_bptt(dtype, tol):
    gen = torch.Generator().manual_seed(2)
    rnn = nn.GRU(E, H, batch_first=True).to(dtype)
    x = torch.randn(B, T, E, generator=gen, dtype=dtype, requires_grad=True)
    h0 = torch.randn(1, B, H, generator=gen, dtype=dtype, requires_grad=True)
    dh = torch.randn(B, T, H, generator=gen, dtype=dtype)
    out, h_n, grads = _run_fused(rnn, x, h0, dh)

    p = {k: v.detach().double().numpy() for k, v in zip(["W_ih", "W_hh", "b_ih", "b_hh"], rnn.parameters())}
    hs, cache = reference.gru_forward(x.detach().double().numpy(), p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"],
                                      h0[0].detach().double().numpy())
    want = reference.gru_bptt(dh.double().numpy(), cache, p["W_ih"], p["W_hh"])
    np.testing.assert_allclose(out.detach().double().numpy(), hs, atol=tol, rtol=0)
    np.testing.assert_allclose(h_n[0].detach().double().numpy(), hs[:, -1], atol=tol, rtol=0)
    for name, ours in [("dW_ih", "W_ih"), ("dW_hh", "W_hh"), ("db_ih", "b_ih"), ("db_hh", "b_hh"), ("dx", "x")]:
        np.testing.assert_allclose(grads[ours].double().numpy(), want[name], atol=tol, rtol=tol, err_msg=name)
    np.testing.assert_allclose(grads["h0"][0].double().numpy(), want["dh0"], atol=tol, rtol=tol)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_reference_matches_torch_nn(cls):
    """The oracle itself: reference.lstm/gru_forward and *_bptt equal torch.nn's forward and autograd (float64)."""
    gen = torch.Generator().manual_seed(3)
    rnn = cls(E, H, batch_first=True).double()
    x = torch.randn(B, T, E, generator=gen, dtype=torch.float64, requires_grad=True)
    dh = torch.randn(B, T, H, generator=gen, dtype=torch.float64)
    out, _ = rnn(x)
    got = torch.autograd.grad((out * dh).sum(), [*rnn.parameters(), x])
    p = [v.detach().numpy() for v in rnn.parameters()]
    forward, bptt = (reference.lstm_forward, reference.lstm_bptt) if cls is nn.LSTM else (reference.gru_forward,
                                                                                           reference.gru_bptt)
    hs, cache = forward(x.detach().numpy(), *p)
    want = bptt(dh.numpy(), cache, p[0], p[1])
    np.testing.assert_allclose(hs, out.detach().numpy(), atol=1e-13)
    for name, g in zip(["dW_ih", "dW_hh", "db_ih", "db_hh", "dx"], got):
        np.testing.assert_allclose(want[name], g.numpy(), atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_fused_matches_torch_nn_float64(cls):
    """Default (zero) initial state, final state as torch.nn returns it, gradients through out and h_n."""
    gen = torch.Generator().manual_seed(4)
    rnn = cls(E, H, batch_first=True).double()
    x = torch.randn(B, T, E, generator=gen, dtype=torch.float64, requires_grad=True)
    dh, dh_n = torch.randn(B, T, H, generator=gen, dtype=torch.float64), torch.randn(1, B, H, dtype=torch.float64)

    def loss_and_grads(run):
        out, state = run()
        h_n = state[0] if cls is nn.LSTM else state
        loss = (out * dh).sum() + (h_n * dh_n).sum()
        return out, h_n, torch.autograd.grad(loss, [*rnn.parameters(), x])

    cell = "lstm" if cls is nn.LSTM else "gru"
    ours = loss_and_grads(lambda: cells.run(cell, cells.weights(rnn), _kernels(), x=x))
    theirs = loss_and_grads(lambda: rnn(x))
    torch.testing.assert_close(ours[0], theirs[0], atol=1e-13, rtol=0)
    torch.testing.assert_close(ours[1], theirs[1], atol=1e-13, rtol=0)
    for a, b in zip(ours[2], theirs[2]):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def _logits_and_grads(model, *inputs):
    model.zero_grad()
    out = model(*inputs)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view(out.shape)).sum().backward()
    grads = {n: (p.grad.to_dense() if p.grad.is_sparse else p.grad).clone()
             for n, p in model.named_parameters() if p.grad is not None}
    return out.detach().clone(), grads


def _fused_and_fallback(monkeypatch, model, *inputs):
    calls = []
    run = cells.run
    monkeypatch.setattr(cells, "run", lambda *a, **k: calls.append(1) or run(*a, **k))
    fused = _logits_and_grads(model, *inputs)
    assert calls, "the fused path was not used"
    calls.clear()
    monkeypatch.setenv("LOOPYNET_KERNEL", "torch")
    fallback = _logits_and_grads(model, *inputs)
    assert not calls, "LOOPYNET_KERNEL=torch still ran the fused path"
    monkeypatch.delenv("LOOPYNET_KERNEL")
    return fused, fallback


def _padded_ids(gen, vocab: int, lengths: list[int]) -> torch.Tensor:
    ids = torch.randint(1, vocab, (len(lengths), max(lengths)), generator=gen)
    return ids * (torch.arange(max(lengths)) < torch.tensor(lengths).unsqueeze(1))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("train_embeddings", [False, True])
@pytest.mark.parametrize("head", ["max", "last"])
def test_classifier_fused_equals_torch_fallback(monkeypatch, cell, train_embeddings, head):
    """Bidirectional 2-layer classifier, ragged lengths (backward direction reversed within length), frozen or
    fine-tuned vectors: logits and every gradient (the table's sparse rows densified) agree in float64."""
    gen = torch.Generator().manual_seed(5)
    table = torch.randn(30, 4, generator=gen)
    table[0] = 0
    config = ModelConfig(cell=cell, units=5, bidirectional=True, layers=2, head=head, dropout=0.0,
                         train_embeddings=train_embeddings, embedding_dims=4)
    model = RecurrentClassifier(config, table, seed=0).double()
    ids = _padded_ids(gen, 30, [9, 3, 6, 1, 9])
    (logits, grads), (want_logits, want_grads) = _fused_and_fallback(monkeypatch, model, ids)
    torch.testing.assert_close(logits, want_logits, atol=1e-13, rtol=0)
    assert grads.keys() == want_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], want_grads[name], atol=1e-12, rtol=0, msg=name)
    if train_embeddings:
        sparse = model.embeddings.grad
        assert sparse.is_sparse and set(sparse.coalesce().indices()[0].tolist()) <= set(ids.unique().tolist()) - {0}


def test_classifier_float32_within_float_order(monkeypatch):
    """The recipe's dtype: fused and fallback differ by float order only (<= 1e-5)."""
    gen = torch.Generator().manual_seed(6)
    table = torch.randn(50, 8, generator=gen)
    table[0] = 0
    config = ModelConfig(cell="lstm", units=16, bidirectional=True, head="max", dropout=0.0, train_embeddings=True,
                         embedding_dims=8)
    model = RecurrentClassifier(config, table, seed=0)
    (logits, grads), (want_logits, want_grads) = _fused_and_fallback(monkeypatch, model,
                                                                    _padded_ids(gen, 50, [20, 7, 13, 20, 2]))
    torch.testing.assert_close(logits, want_logits, atol=1e-5, rtol=0)
    for name in grads:
        torch.testing.assert_close(grads[name], want_grads[name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tagger_fused_equals_packed_torch(monkeypatch, cell):
    """The tagger's BiLSTM/BiGRU: the fused path equals the packed torch.nn path, emissions (padded steps
    included) and gradients, float64."""
    gen = torch.Generator().manual_seed(7)
    config = TaggerConfig(cell=cell, units=6, vocab_size=20, embedding_dims=5, num_chars=7, num_tags=4, dropout=0.0,
                          crf=False)
    model = SequenceTagger(config, seed=1).double()
    lengths = [9, 3, 6, 1]
    words = _padded_ids(gen, 20, lengths)
    mask = words != 0
    cases = torch.randint(1, 5, words.shape, generator=gen) * mask
    chars = torch.randint(1, 7, (*words.shape, 3), generator=gen) * mask.unsqueeze(2)
    inputs = (words, cases, chars, torch.tensor(lengths))
    (emissions, grads), (want, want_grads) = _fused_and_fallback(monkeypatch, model, *inputs)
    torch.testing.assert_close(emissions, want, atol=1e-13, rtol=0)
    assert grads.keys() == want_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], want_grads[name], atol=1e-12, rtol=0, msg=name)


def test_fused_not_used_where_it_cannot_run():
    """Two-layer or non-CPU-float modules stay on torch.nn (the caller's fallback)."""
    assert cells.fused(nn.LSTM(3, 4, num_layers=2), torch.zeros(1)) is None
    assert cells.fused(nn.LSTM(3, 4), torch.zeros(1, dtype=torch.float16)) is None
    assert cells.fused(nn.LSTM(3, 4).double(), torch.zeros(1)) is None  # dtype mismatch
    assert cells.fused(nn.GRU(3, 4, bias=False), torch.zeros(1)) is None
    # off the CPU (--device cuda) torch.nn runs (cuDNN); "meta" stands in for a device this machine lacks
    assert cells.fused(nn.LSTM(3, 4, device="meta"), torch.zeros(1, device="meta")) is None
    assert cells.fused(nn.LSTM(3, 4), torch.zeros(1, device="meta")) is None


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("batch, steps", [(1, 4), (3, 1), (1, 1)])
def test_batch_of_one_and_single_step(cls, batch, steps):
    """Shapes where torch's strides of size-1 dimensions are arbitrary (a single text, a one-token text): the
    fused path still equals torch.nn, forward and gradients (float64), through a bidirectional layer too."""
    gen = torch.Generator().manual_seed(8)
    rnn = cls(E, H, batch_first=True, bidirectional=True).double()
    x = torch.randn(batch, steps, E, generator=gen, dtype=torch.float64, requires_grad=True)
    dh = torch.randn(batch, steps, 2 * H, generator=gen, dtype=torch.float64)
    cell = "lstm" if cls is nn.LSTM else "gru"
    lengths = torch.full((batch,), steps)
    ours, _ = cells.run(cell, cells.weights(rnn), _kernels(), x=x, lengths=lengths)
    theirs, _ = rnn(x)
    torch.testing.assert_close(ours, theirs, atol=1e-13, rtol=0)
    for a, b in zip(torch.autograd.grad((ours * dh).sum(), [*rnn.parameters(), x]),
                    torch.autograd.grad((theirs * dh).sum(), [*rnn.parameters(), x])):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_training_steps_agree_with_fallback_float64(monkeypatch):
    """imdb-rnn's network and optimisers (BiLSTM, max head, fine-tuned table with SparseAdam + Adam, clip-norm):
    five training steps from the same weights reach the same parameters on both paths (float64; dropout 0)."""
    gen = torch.Generator().manual_seed(9)
    table = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    table[0] = 0
    config = ModelConfig(cell="lstm", units=5, bidirectional=True, head="max", dropout=0.0, train_embeddings=True,
                         embedding_dims=6)
    batches = [(_padded_ids(gen, 40, [8, 3, 8, 5]), torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64))
               for _ in range(5)]

    def train(kernel: str) -> dict:
        monkeypatch.setenv("LOOPYNET_KERNEL", kernel)
        model = RecurrentClassifier(config, table, seed=0).double()
        optimizer = make_optimizer(model, TrainConfig(optimizer="adam", lr=1e-2))
        for ids, labels in batches:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(ids), labels)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for n, p in model.named_parameters() if n != "embeddings"], 0.5)
            optimizer.step()
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    fused, fallback = train("c"), train("torch")
    for name in fused:
        torch.testing.assert_close(fused[name], fallback[name], atol=1e-10, rtol=0, msg=name)
