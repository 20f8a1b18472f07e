"""The torch.nn.RNN twin (models/twin.py) computes the book's SimpleRNN: same outputs, same gradients,
same trainable parameters, and the weights convert both ways unchanged."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from loopynet.config import ModelConfig
from loopynet.models.classifier import BookClassifier, count_trainable
from loopynet.models.simple_rnn import SimpleRNN
from loopynet.models.cudnn_rnn import run_as_twin
from loopynet.models.twin import SimpleRNNTwin, from_simple_rnn, to_simple_rnn

B, T, E, H, V = 3, 6, 5, 4, 9
TOL = dict(atol=1e-12, rtol=1e-12)


def _layer(seed=0) -> SimpleRNN:
    layer = SimpleRNN(E, H, torch.Generator().manual_seed(seed)).double()
    with torch.no_grad():
        layer.bias.copy_(torch.linspace(-0.3, 0.4, H, dtype=torch.float64))  # a non-zero bias must carry over
    return layer


@pytest.mark.parametrize("with_h0", [False, True])
def test_twin_outputs_and_gradients_equal_the_book_layer(with_h0):
    layer = _layer()
    twin = from_simple_rnn(layer)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, E, dtype=torch.float64, generator=g)
    h0 = torch.randn(B, H, dtype=torch.float64, generator=g) if with_h0 else None
    weights = torch.randn(B, T, H, dtype=torch.float64, generator=g)  # a loss that weighs every output

    outputs = []
    for module in (layer, twin):
        xi = x.clone().requires_grad_(True)
        out, last = module(xi, h0)
        ((out * weights).sum() + last.square().sum()).backward()
        outputs.append((out, last, xi.grad))
    for mine, theirs in zip(outputs[0], outputs[1]):
        assert_close(theirs, mine, **TOL)
    assert_close(twin.rnn.weight_ih_l0.grad, layer.kernel.grad.t(), **TOL)
    assert_close(twin.rnn.weight_hh_l0.grad, layer.recurrent_kernel.grad.t(), **TOL)
    assert_close(twin.rnn.bias_ih_l0.grad, layer.bias.grad, **TOL)
    assert twin.rnn.bias_hh_l0.grad is None and not twin.rnn.bias_hh_l0.requires_grad


def test_forward_ids_equals_forward_on_looked_up_vectors():
    layer = _layer()
    twin = from_simple_rnn(layer)
    table = torch.randn(V, E, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ids = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(3))
    out, last = twin.forward_ids(ids, table)
    ref_out, ref_last = layer.forward_ids(ids, table)
    assert_close(out, ref_out, **TOL)
    assert_close(last, ref_last, **TOL)


def test_conversion_round_trip_is_exact_and_frozen_bias_stays_zero_under_training():
    layer = _layer(seed=5)
    twin = from_simple_rnn(layer)
    opt = torch.optim.RMSprop([p for p in twin.parameters() if p.requires_grad], lr=0.1)
    twin(torch.randn(B, T, E, dtype=torch.float64))[0].sum().backward()
    opt.step()
    assert torch.count_nonzero(twin.rnn.bias_hh_l0) == 0
    back = to_simple_rnn(twin)
    assert torch.equal(back.kernel, twin.rnn.weight_ih_l0.t())
    assert torch.equal(back.recurrent_kernel, twin.rnn.weight_hh_l0.t())
    assert torch.equal(back.bias, twin.rnn.bias_ih_l0)
    again = from_simple_rnn(back)
    for name, tensor in twin.rnn.state_dict().items():
        assert torch.equal(again.rnn.state_dict()[name], tensor), name
    untouched = to_simple_rnn(from_simple_rnn(layer))
    for name, tensor in layer.state_dict().items():
        assert torch.equal(untouched.state_dict()[name], tensor), name


def test_a_non_zero_second_bias_is_refused():
    twin = SimpleRNNTwin(E, H)
    with torch.no_grad():
        twin.rnn.bias_hh_l0[1] = 0.5
    with pytest.raises(ValueError, match="bias_hh_l0 is not zero"):
        to_simple_rnn(twin)


@pytest.mark.parametrize("units, expected", [(50, 37_551), (100, 80_101)])
def test_book_network_with_the_twin_keeps_the_books_parameter_count(units, expected):
    config = ModelConfig(units=units)
    model = BookClassifier(config, torch.zeros(3, config.embedding_dims))
    model.rnn = from_simple_rnn(model.rnn)
    assert isinstance(model.rnn.rnn, torch.nn.RNN)
    assert count_trainable(model) == expected


@pytest.mark.parametrize("with_h0", [False, True])
def test_run_as_twin_computes_the_layer_with_its_own_parameters(with_h0):
    """How SimpleRNN computes on CUDA (cuDNN), checked here through torch.nn.RNN's CPU implementation."""
    layer = _layer(seed=3)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(B, T, E, dtype=torch.float64, generator=g)
    h0 = torch.randn(B, H, dtype=torch.float64, generator=g) if with_h0 else None
    results = []
    for run in (layer, lambda x, h0: run_as_twin(layer, x, h0)):
        layer.zero_grad()
        out, last = run(x, h0)
        (out.sin().sum() + last.sum()).backward()
        results.append((out, last, *(p.grad.clone() for p in layer.parameters())))
    for mine, theirs in zip(*results):
        assert_close(theirs, mine, **TOL)


def test_simple_rnn_off_the_cpu_runs_as_its_twin(monkeypatch):
    from loopynet.models import cudnn_rnn

    calls = []
    monkeypatch.setattr(cudnn_rnn, "run_as_twin", lambda layer, x, h0=None: calls.append(x.device.type) or (x, x[:, -1]))
    layer = SimpleRNN(E, H).to("meta")
    layer(torch.empty(B, T, E, device="meta"))
    layer.forward_ids(torch.zeros(B, T, dtype=torch.int64, device="meta"), torch.empty(V, E, device="meta"))
    assert calls == ["meta", "meta"]
