"""The tagger's stacked recurrent layers (--layers), variational dropout (--dropout-mode) and Nadam (--optimizer)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from loopynet.cli import configs_from, parse
from loopynet.config import ConfigError, TaggerConfig, TaggerDataConfig, TrainConfig, tagger_train_config
from loopynet.export.graphs import TaggerGraph
from loopynet.models.tagger import SequenceTagger, VariationalDropout
from loopynet.train.loop import make_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")

B, T, L, V, E, C = 3, 7, 4, 11, 5, 9
LENGTHS = torch.tensor([7, 3, 5])


def tagger(**overrides) -> SequenceTagger:
    config = TaggerConfig(units=6, char_dims=4, char_filters=5, casing_dims=3, vocab_size=V, embedding_dims=E,
                          num_chars=C, num_tags=9, **overrides)
    return SequenceTagger(config, torch.randn(V, E, generator=torch.Generator().manual_seed(1)), seed=3).eval()


def batch():
    gen = torch.Generator().manual_seed(5)
    words, cases = torch.randint(1, V, (B, T), generator=gen), torch.randint(1, 9, (B, T), generator=gen)
    chars = torch.randint(1, C, (B, T, L), generator=gen)
    return words, cases, chars, LENGTHS


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_two_stacked_layers_equal_torchs_two_layer_module(cell):
    """layers 2: the emissions at every real step equal those of torch.nn's own 2-layer bidirectional module over
    packed sequences (the oracle), with layer 1's weights from `rnn` and layer 2's from `upper[0]`; the ONNX graph
    (`TaggerGraph`) stacks them the same way."""
    model = tagger(cell=cell, layers=2)
    assert model.upper[0].input_size == 12 and model.dense.in_features == 12  # 2 directions x 6 units
    words, cases, chars, lengths = batch()
    oracle = type(model.rnn)(model.rnn.input_size, 6, num_layers=2, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for suffix in ("", "_reverse"):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(oracle, f"{name}_l0{suffix}").copy_(getattr(model.rnn, f"{name}_l0{suffix}"))
                getattr(oracle, f"{name}_l1{suffix}").copy_(getattr(model.upper[0], f"{name}_l0{suffix}"))
        x = model.step_inputs(words, cases, chars)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        expected = model.dense(pad_packed_sequence(oracle(packed)[0], batch_first=True, total_length=T)[0])
        emissions = model(words, cases, chars, lengths)
        graph = TaggerGraph(model)(words, cases, chars, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(emissions[b, :n], expected[b, :n], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(graph[b, :n], expected[b, :n], rtol=1e-5, atol=1e-6)


def test_one_layer_has_no_upper_weights_and_the_checks():
    """layers 1 (the default) adds no state_dict key (folders saved before `layers` load unchanged); out-of-range
    values stop with one line."""
    assert not [k for k in tagger().state_dict() if k.startswith("upper")]
    assert sorted({k.split(".")[1] for k in tagger(layers=3).state_dict() if k.startswith("upper")}) == ["0", "1"]
    with pytest.raises(ConfigError, match="layers must be >= 1, got 0"):
        tagger(layers=0)
    with pytest.raises(ConfigError, match="layers 2 needs cell lstm or gru"):
        tagger(layers=2, cell="rnn")
    with pytest.raises(ConfigError, match=r"dropout_mode must be one of \('standard', 'variational'\), got 'gal'"):
        tagger(dropout_mode="gal")


def test_variational_dropout_keeps_one_mask_per_sentence_for_all_steps():
    """In training every (sentence, feature) is kept or zeroed at all time steps together, kept ones scaled by
    1 / (1 - p); standard dropout draws per step; in eval mode both are the identity."""
    x = torch.ones(4, 50, 16)
    drop = VariationalDropout(0.5).train()
    torch.manual_seed(0)
    y = drop(x)
    assert torch.equal(y, y[:, :1, :].expand_as(y))  # the same at every step
    assert set(y.unique().tolist()) == {0.0, 2.0} and not torch.equal(y[0], y[1])  # sentences get their own masks
    standard = nn.Dropout(0.5).train()(x)
    assert not torch.equal(standard, standard[:, :1, :].expand_as(standard))
    assert torch.equal(drop.eval()(x), x) and torch.equal(VariationalDropout(0.0).train()(x), x)


def test_the_variational_tagger_uses_it_and_is_the_standard_one_in_eval_mode():
    variational, standard = tagger(dropout_mode="variational", layers=2), tagger(layers=2)
    assert isinstance(variational.dropout, VariationalDropout) and isinstance(standard.dropout, nn.Dropout)
    with torch.no_grad():
        torch.testing.assert_close(variational(*batch()), standard(*batch()), rtol=0, atol=0)


def test_nadam_takes_dozats_first_step():
    """One Nadam step from zero state (Dozat 2016, with torch's momentum schedule mu_t = beta1 (1 - 0.96^(t psi) / 2),
    psi = 0.004): w -= lr ((1 - mu_t) / (1 - prod mu_1..t) g + mu_(t+1) / (1 - prod mu_1..(t+1)) m_t) / (sqrt(v_t /
    (1 - beta2^t)) + eps), at t = 1: m_1 = (1 - beta1) g and sqrt(v_1 / (1 - beta2)) = |g|."""
    model = tagger()
    optimizer = make_optimizer(model, TrainConfig(optimizer="nadam", lr=0.01))
    assert isinstance(optimizer, torch.optim.NAdam)
    before = model.dense.weight.detach().clone()
    grad = torch.linspace(-2.0, 3.0, before.numel()).view_as(before)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    model.dense.weight.grad = grad.clone()
    optimizer.step()
    beta1, eps, lr = 0.9, 1e-7, 0.01
    mu1, mu2 = (beta1 * (1 - 0.5 * 0.96 ** (t * 0.004)) for t in (1, 2))
    denom = grad.abs() + eps  # sqrt(v_1 / (1 - beta2)) = |g|
    step = lr * (1 - mu1) / (1 - mu1) * grad / denom + lr * mu2 / (1 - mu1 * mu2) * (1 - beta1) * grad / denom
    torch.testing.assert_close(model.dense.weight.detach(), before - step, rtol=1e-6, atol=1e-7)


def test_the_flags_reach_the_configs():
    args = parse(["tag", "train", "--data", "d", "--vectors", "v", "--out", "o", "--layers", "2", "--units", "100",
                  "--dropout-mode", "variational", "--optimizer", "nadam"])
    _, model, train = configs_from("tag train", args, TaggerDataConfig(), TaggerConfig(), tagger_train_config())
    assert (model.layers, model.units, model.dropout_mode, train.optimizer) == (2, 100, "variational", "nadam")
    assert (TaggerConfig().layers, TaggerConfig().dropout_mode) == (1, "standard")
