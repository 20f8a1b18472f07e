"""The NumPy reference (models/reference.py) is checked against finite differences, then used as the
oracle for loopynet's torch SimpleRNN, BPTT and BookClassifier (NLP in Action 8.1.1-8.1.2)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose

from loopynet.config import ModelConfig
from loopynet.models import fast_kernel
from loopynet.models import reference as ref
from loopynet.models.classifier import BookClassifier
from loopynet.models.simple_rnn import SimpleRNN

B, T, E, H, V = 3, 7, 5, 4, 11
TOL = dict(atol=1e-7, rtol=1e-7)


@pytest.fixture(params=["compiled", "torch"])
def kernel_path(request, monkeypatch):
    """Run a test on the compiled C kernels and again on the pure-PyTorch path (LOOPYNET_KERNEL=torch)."""
    if request.param == "torch":
        monkeypatch.setenv(fast_kernel.ENV, "torch")
    else:
        monkeypatch.delenv(fast_kernel.ENV, raising=False)
        if fast_kernel.kernels() is None:
            if shutil.which("cc"):  # a compiler exists, so a failed build is a defect, not a skip
                pytest.fail("the compiled kernels did not build although `cc` is installed")
            pytest.skip("no C compiler: only the pure-PyTorch path can run here")
    return request.param


def _rng(seed=0):
    return np.random.default_rng(seed)


def _rnn_params(rng):
    return {
        "W_xh": rng.normal(0, 0.5, (E, H)),
        "W_hh": rng.normal(0, 0.5, (H, H)),
        "b_h": rng.normal(0, 0.1, H),
    }


def _case(kind, seed=0):
    """(loss_fn, x, y, params) for one of the three heads."""
    rng = _rng(seed)
    x = rng.normal(size=(B, T, E))
    params = _rnn_params(rng)
    if kind == "classifier":
        params.update(W_dense=rng.normal(0, 0.3, (T * H, 1)), b_dense=rng.normal(0, 0.1, 1))
        return ref.classifier_loss_and_grads, x, rng.integers(0, 2, B).astype(float), params
    params.update(W_hy=rng.normal(0, 0.5, (H, 1)), b_y=rng.normal(0, 0.1, 1))
    if kind == "last":
        return ref.last_step_loss_and_grads, x, rng.integers(0, 2, B).astype(float), params
    return ref.every_step_loss_and_grads, x, rng.integers(0, 2, (B, T)).astype(float), params


def _numgrad(f, a, idx, eps=1e-6):
    old = a[idx]
    a[idx] = old + eps
    up = f()
    a[idx] = old - eps
    down = f()
    a[idx] = old
    return (up - down) / (2 * eps)


def _some_indices(shape, rng, n=4):
    return [tuple(int(rng.integers(0, s)) for s in shape) for _ in range(n)]


# --- the oracle itself -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["classifier", "last", "every"])
def test_reference_loss_grads_match_finite_differences(kind):
    loss_fn, x, y, params = _case(kind)
    _, grads = loss_fn(x, y, params)
    assert set(grads) == set(params)
    rng = _rng(1)
    for name, p in params.items():
        for idx in _some_indices(p.shape, rng):
            num = _numgrad(lambda: loss_fn(x, y, params)[0], p, idx)
            assert_allclose(grads[name][idx], num, atol=1e-8, rtol=1e-6, err_msg=f"{kind} {name}{idx}")


def test_reference_bptt_matches_finite_differences_including_x_and_h0():
    rng = _rng(2)
    x, p = rng.normal(size=(B, T, E)), _rnn_params(rng)
    h0, G = rng.normal(0, 0.5, (B, H)), rng.normal(size=(B, T, H))  # loss = sum(hs * G): dhs = G

    def loss():
        return np.sum(ref.forward(x, p["W_xh"], p["W_hh"], p["b_h"], h0) * G)

    hs = ref.forward(x, p["W_xh"], p["W_hh"], p["b_h"], h0)
    dx, dW_xh, dW_hh, db_h, dh0 = ref.bptt(x, hs, G, p["W_hh"], h0, W_xh=p["W_xh"])
    for analytic, a in [(dx, x), (dW_xh, p["W_xh"]), (dW_hh, p["W_hh"]), (db_h, p["b_h"]), (dh0, h0)]:
        for idx in _some_indices(a.shape, rng):
            assert_allclose(analytic[idx], _numgrad(loss, a, idx), atol=1e-8, rtol=1e-6)
    assert ref.bptt(x, hs, G, p["W_hh"], h0)[0] is None  # dx needs W_xh


def test_reference_forward_is_the_equation():
    rng = _rng(3)
    x, p = rng.normal(size=(B, T, E)), _rnn_params(rng)
    hs = ref.forward(x, p["W_xh"], p["W_hh"], p["b_h"])
    h = np.zeros((B, H))
    for t in range(T):
        h = np.tanh(x[:, t] @ p["W_xh"] + h @ p["W_hh"] + p["b_h"])
        assert_allclose(hs[:, t], h, **TOL)


# --- loopynet's torch SimpleRNN against the oracle -----------------------------------------------


def _torch_rnn(p):
    rnn = SimpleRNN(E, H).double()
    with torch.no_grad():
        rnn.kernel.copy_(torch.from_numpy(p["W_xh"]))
        rnn.recurrent_kernel.copy_(torch.from_numpy(p["W_hh"]))
        rnn.bias.copy_(torch.from_numpy(p["b_h"]))
    return rnn


@pytest.mark.usefixtures("kernel_path")
@pytest.mark.parametrize("with_h0", [False, True])
def test_simple_rnn_forward_matches_reference(with_h0):
    rng = _rng(4)
    x, p = rng.normal(size=(B, T, E)), _rnn_params(rng)
    h0 = rng.normal(0, 0.5, (B, H)) if with_h0 else None
    out, last = _torch_rnn(p)(torch.from_numpy(x), None if h0 is None else torch.from_numpy(h0))
    hs = ref.forward(x, p["W_xh"], p["W_hh"], p["b_h"], h0)
    assert out.shape == (B, T, H) and last.shape == (B, H) and out.dtype == torch.float64
    assert_allclose(out.detach().numpy(), hs, **TOL)
    assert_allclose(last.detach().numpy(), hs[:, -1], **TOL)


@pytest.mark.usefixtures("kernel_path")
@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("loss_kind", ["last_step", "every_step", "random_dh", "last_state_output"])
def test_simple_rnn_gradients_match_reference_bptt(loss_kind, with_h0):
    rng = _rng(5)
    x, p = rng.normal(size=(B, T, E)), _rnn_params(rng)
    h0 = rng.normal(0, 0.5, (B, H)) if with_h0 else np.zeros((B, H))
    W_y, b_y = rng.normal(0, 0.5, (H, 1)), rng.normal(0, 0.1, 1)
    y_last, y_every = rng.integers(0, 2, B).astype(float), rng.integers(0, 2, (B, T)).astype(float)
    G = rng.normal(size=(B, T, H))

    rnn = _torch_rnn(p)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    h0t = torch.from_numpy(h0.copy()).requires_grad_()
    out, last = rnn(xt, h0t if with_h0 else None)
    Wt, bt = torch.from_numpy(W_y), torch.from_numpy(b_y)
    dhs = np.zeros((B, T, H))
    if loss_kind == "last_step":  # 8.1.2.1: the label is read after the last step
        loss = F.binary_cross_entropy_with_logits((out[:, -1] @ Wt + bt)[:, 0], torch.from_numpy(y_last))
        z = (ref.forward(x, p["W_xh"], p["W_hh"], p["b_h"], h0)[:, -1] @ W_y + b_y)[:, 0]
        dhs[:, -1] = ((1 / (1 + np.exp(-z)) - y_last)[:, None] / B) @ W_y.T
    elif loss_kind == "every_step":  # 8.1.2.2: a label at every step, losses summed over steps
        z_t = (out @ Wt + bt)[..., 0]
        loss = sum(F.binary_cross_entropy_with_logits(z_t[:, t], torch.from_numpy(y_every[:, t])) for t in range(T))
        z = (ref.forward(x, p["W_xh"], p["W_hh"], p["b_h"], h0) @ W_y + b_y)[..., 0]
        dhs = ((1 / (1 + np.exp(-z)) - y_every)[..., None] / B) @ W_y.T
    elif loss_kind == "random_dh":
        loss = (out * torch.from_numpy(G)).sum()
        dhs = G
    else:  # the second output `last` (B, H), alone: the same as dh only at the last step
        loss = (last * torch.from_numpy(G[:, -1])).sum()
        dhs[:, -1] = G[:, -1]
    loss.backward()

    hs = ref.forward(x, p["W_xh"], p["W_hh"], p["b_h"], h0)
    dx, dW_xh, dW_hh, db_h, dh0 = ref.bptt(x, hs, dhs, p["W_hh"], h0, W_xh=p["W_xh"])
    assert_allclose(rnn.kernel.grad.numpy(), dW_xh, **TOL)
    assert_allclose(rnn.recurrent_kernel.grad.numpy(), dW_hh, **TOL)
    assert_allclose(rnn.bias.grad.numpy(), db_h, **TOL)
    assert_allclose(xt.grad.numpy(), dx, **TOL)
    if with_h0:
        assert_allclose(h0t.grad.numpy(), dh0, **TOL)

    if loss_kind in ("last_step", "every_step"):  # the reference loss helpers agree too
        fn = ref.last_step_loss_and_grads if loss_kind == "last_step" else ref.every_step_loss_and_grads
        if not with_h0:
            ref_loss, grads = fn(x, y_last if loss_kind == "last_step" else y_every, {**p, "W_hy": W_y, "b_y": b_y})
            assert_allclose(loss.item(), ref_loss, **TOL)
            assert_allclose(grads["W_xh"], dW_xh, **TOL)
            assert_allclose(grads["W_hh"], dW_hh, **TOL)


# --- the whole BookClassifier against the oracle ---------------------------------------------------


def _classifier_case(seed=6):
    gen = torch.Generator().manual_seed(seed)
    emb = torch.randn(V, E, generator=gen, dtype=torch.float64)
    emb[0] = 0.0  # padding row
    model = BookClassifier(ModelConfig(units=H, dropout=0.0, embedding_dims=E, maxlen=T), emb, seed=seed).double()
    with torch.no_grad():
        model.embeddings.copy_(emb)  # the buffer was stored as float32; restore full float64 vectors
        model.dense_bias.fill_(0.05)
        model.rnn.bias.copy_(torch.randn(H, generator=gen, dtype=torch.float64) * 0.1)
    ids = torch.randint(0, V, (B, T), generator=gen)
    ids[0, -3:] = 0  # padded tail, as pad_trunc does
    ids[1, 2] = 0
    y = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    return model, ids, y


def _ref_params(model):
    return {
        "W_xh": model.rnn.kernel.detach().numpy().copy(),
        "W_hh": model.rnn.recurrent_kernel.detach().numpy().copy(),
        "b_h": model.rnn.bias.detach().numpy().copy(),
        "W_dense": model.dense_kernel.detach().numpy().copy(),
        "b_dense": model.dense_bias.detach().numpy().copy(),
    }


TORCH_NAME = {
    "W_xh": "rnn.kernel",
    "W_hh": "rnn.recurrent_kernel",
    "b_h": "rnn.bias",
    "W_dense": "dense_kernel",
    "b_dense": "dense_bias",
}


@pytest.mark.usefixtures("kernel_path")
def test_book_classifier_loss_and_gradients_match_reference():
    model, ids, y = _classifier_case()
    model.train()  # dropout=0: train mode must be the identity too
    assert (ids == 0).any()
    loss = F.binary_cross_entropy(torch.sigmoid(model(ids)), y)
    loss.backward()
    x = model.embeddings[ids].detach().numpy()
    ref_loss, grads = ref.classifier_loss_and_grads(x, y.numpy(), _ref_params(model))
    assert_allclose(loss.item(), ref_loss, **TOL)
    named = dict(model.named_parameters())
    assert set(named) == set(TORCH_NAME.values())
    for name, g in grads.items():
        assert named[TORCH_NAME[name]].grad.shape == g.shape
        assert_allclose(named[TORCH_NAME[name]].grad.numpy(), g, atol=1e-7, rtol=1e-7, err_msg=name)


@pytest.mark.usefixtures("kernel_path")
def test_weights_change_once_per_batch_sgd_matches_torch():
    model, ids, y = _classifier_case(seed=7)
    lr = 0.5
    params = _ref_params(model)
    x = model.embeddings[ids].detach().numpy()
    _, grads = ref.classifier_loss_and_grads(x, y.numpy(), params)
    new = ref.sgd_step(params, grads, lr)

    opt = torch.optim.SGD(model.parameters(), lr=lr)
    opt.zero_grad()
    F.binary_cross_entropy_with_logits(model(ids), y).backward()
    opt.step()
    named = dict(model.named_parameters())
    for name, v in new.items():
        assert_allclose(named[TORCH_NAME[name]].detach().numpy(), v, **TOL)
        assert not np.allclose(v, params[name])  # every weight did move, once
    # sgd_step leaves params alone and keeps keys without a gradient
    assert ref.sgd_step({"a": np.ones(2), "b": np.ones(2)}, {"a": np.ones(2)}, 0.5)["b"].tolist() == [1.0, 1.0]


@pytest.mark.usefixtures("kernel_path")
def test_summed_correction_equals_sum_of_per_step_contributions_every_step_loss():
    """8.1.2.2: backprop each step's error to t=0 on its own, sum all those corrections: same gradient."""
    loss_fn, x, y, params = _case("every", seed=8)
    _, grads = loss_fn(x, y, params)
    hs = ref.forward(x, params["W_xh"], params["W_hh"], params["b_h"])
    z = (hs @ params["W_hy"] + params["b_y"])[..., 0]
    dhs = ((1 / (1 + np.exp(-z)) - y)[..., None] / B) @ params["W_hy"].T  # (B, T, H)

    total = [np.zeros((E, H)), np.zeros((H, H)), np.zeros(H)]
    per_step = []
    for t in range(T):
        only_t = np.zeros_like(dhs)
        only_t[:, t] = dhs[:, t]  # the error of step t alone
        _, dW_xh, dW_hh, db_h, _ = ref.bptt(x, hs, only_t, params["W_hh"])
        per_step.append(dW_xh)
        for acc, g in zip(total, (dW_xh, dW_hh, db_h)):
            acc += g
    assert_allclose(total[0], grads["W_xh"], **TOL)
    assert_allclose(total[1], grads["W_hh"], **TOL)
    assert_allclose(total[2], grads["b_h"], **TOL)
    assert not np.allclose(per_step[0], per_step[-1])  # the steps really contribute differently

    # and the torch SimpleRNN + per-step head gives the same summed correction
    rnn = _torch_rnn(params)
    out, _ = rnn(torch.from_numpy(x))
    zt = (out @ torch.from_numpy(params["W_hy"]) + torch.from_numpy(params["b_y"]))[..., 0]
    F.binary_cross_entropy_with_logits(zt, torch.from_numpy(y), reduction="sum").div(B).backward()
    assert_allclose(rnn.kernel.grad.numpy(), total[0], **TOL)
    assert_allclose(rnn.recurrent_kernel.grad.numpy(), total[1], **TOL)
    assert_allclose(rnn.bias.grad.numpy(), total[2], **TOL)
