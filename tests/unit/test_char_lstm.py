"""The tagger's character BiLSTM (`--char-encoder lstm|both`, Lample et al. 2016 sec. 2.2): each token's
features are the forward LSTM's state after its last character ++ the backward LSTM's state after its first,
checked against the NumPy LSTM oracle (`loopynet.models.reference.lstm_forward`) token by token, with
exact shapes, zeros for padding tokens, padding invariance and a float64 gradient check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from loopynet.cli import configs_from, parse
from loopynet.config import ConfigError, TaggerConfig, TaggerDataConfig, tagger_train_config
from loopynet.models import reference
from loopynet.models.tagger import SequenceTagger

pytestmark = pytest.mark.usefixtures("one_thread")

# 2 sentences x 3 tokens x up to 4 characters (0 = padding): token lengths 3, 1, 2 / 4, 0 (a padding token), 0
CHARS = torch.tensor([[[3, 4, 5, 0], [2, 0, 0, 0], [6, 3, 0, 0]],
                      [[5, 5, 2, 4], [0, 0, 0, 0], [0, 0, 0, 0]]])


def tagger(encoder: str, dtype=torch.float32) -> SequenceTagger:
    config = TaggerConfig(units=3, casing_dims=0, char_encoder=encoder, char_dims=4, char_filters=5, char_units=2,
                          vocab_size=4, embedding_dims=3, num_chars=7, num_tags=5, crf=False)
    return SequenceTagger(config, torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), seed=1).to(dtype).eval()


def oracle(model: SequenceTagger, chars: torch.Tensor) -> np.ndarray:
    """(B, T, 2U) from the NumPy LSTM run on each token's own characters, unpadded; zeros for no characters."""
    lstm, U = model.char_lstm, model.config.char_units
    table = model.char_embedding.weight.detach().double().numpy()
    weights = {d: [getattr(lstm, f"{n}_l0{d}").detach().double().numpy()
                   for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")] for d in ("", "_reverse")}
    B, T, _ = chars.shape
    out = np.zeros((B, T, 2 * U))
    for b in range(B):
        for t in range(T):
            ids = [int(c) for c in chars[b, t] if c]
            if ids:
                x = table[ids][None]  # (1, n, C)
                forward, _ = reference.lstm_forward(x, *weights[""])
                backward, _ = reference.lstm_forward(x[:, ::-1], *weights["_reverse"])
                out[b, t] = np.concatenate([forward[0, -1], backward[0, -1]])
    return out


def test_char_states_equal_the_numpy_lstm_per_token_with_zeros_for_padding():
    model = tagger("lstm")
    states = model.char_states(CHARS)
    assert states.shape == (2, 3, 4)
    np.testing.assert_allclose(states.detach().numpy(), oracle(model, CHARS), rtol=1e-5, atol=1e-6)
    assert not states[1, 1:].any() and states[0].abs().min() > 0


def test_char_states_do_not_depend_on_character_padding_or_other_tokens():
    model = tagger("lstm")
    wider = torch.cat([CHARS, torch.zeros(2, 3, 3, dtype=torch.int64)], dim=2)  # L 4 -> 7
    torch.testing.assert_close(model.char_states(wider), model.char_states(CHARS))
    torch.testing.assert_close(model.char_states(CHARS[:1, :1])[0, 0], model.char_states(CHARS)[0, 0])


@pytest.mark.parametrize("encoder, features", [("cnn", 3 + 5), ("lstm", 3 + 4), ("both", 3 + 5 + 4)])
def test_step_inputs_hold_the_chosen_character_features(encoder, features):
    model = tagger(encoder)
    words, cases = torch.tensor([[1, 2, 3], [2, 0, 0]]), torch.zeros(2, 3, dtype=torch.int64)
    x = model.step_inputs(words, cases, CHARS)
    assert x.shape == (2, 3, features)
    assert hasattr(model, "char_cnn") == (encoder != "lstm") and hasattr(model, "char_lstm") == (encoder != "cnn")
    if encoder != "cnn":
        torch.testing.assert_close(x[..., -4:], model.char_states(CHARS))
    emissions = model(words, cases, CHARS, torch.tensor([3, 1]))
    assert emissions.shape == (2, 3, 5)


def test_gradients_of_the_char_lstm_pass_a_float64_gradient_check():
    model = tagger("lstm", torch.float64)
    names = ["char_embedding.weight", "char_lstm.weight_ih_l0", "char_lstm.weight_hh_l0_reverse",
             "char_lstm.bias_hh_l0"]
    params = dict(model.named_parameters())

    def features(*tensors):
        return torch.func.functional_call(model, dict(zip(names, tensors)), (CHARS,), strict=False)

    model.forward = model.char_states  # functional_call calls forward
    inputs = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    assert torch.autograd.gradcheck(features, inputs, eps=1e-6, atol=1e-6)


def test_the_flag_table_and_its_checks():
    args = parse(["tag", "train", "--data", "d", "--vectors", "v", "--out", "o", "--char-encoder", "lstm",
                  "--char-units", "7"])
    _, model, _ = configs_from("tag train", args, TaggerDataConfig(), TaggerConfig(), tagger_train_config())
    assert (model.char_encoder, model.char_units) == ("lstm", 7)
    with pytest.raises(ConfigError, match="char_encoder must be one of"):
        SequenceTagger(TaggerConfig(char_encoder="gru"))
    with pytest.raises(ConfigError, match="char_units must be >= 0"):
        SequenceTagger(TaggerConfig(char_units=-1))
    off = SequenceTagger(TaggerConfig(char_encoder="lstm", char_units=0, casing_dims=0, embedding_dims=3))
    assert not hasattr(off, "char_lstm") and not hasattr(off, "char_embedding")
