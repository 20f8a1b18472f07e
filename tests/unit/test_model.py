"""The book's network: parameter counts, Keras initialisers, the summary table of the chapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from loopynet.config import ModelConfig
from loopynet.models.classifier import BookClassifier, count_trainable
from loopynet.models.summary import summary


def model(units=50, maxlen=400, dims=300, vocab=20):
    return BookClassifier(ModelConfig(units=units, maxlen=maxlen, embedding_dims=dims), torch.randn(vocab, dims))


@pytest.mark.parametrize("units, expected", [(50, 37_551), (100, 80_101)])
def test_trainable_parameters_match_the_chapter(units, expected):
    assert count_trainable(model(units)) == expected


def test_embeddings_are_frozen_and_not_counted():
    m = model()
    assert not any(p is m.embeddings for p in m.parameters())
    assert "embeddings" in m.state_dict()


def test_keras_initialisers():
    m = model()
    limit = np.sqrt(6 / (300 + 50))
    k = m.rnn.kernel.detach()
    assert k.abs().max() <= limit and k.abs().max() > 0.9 * limit  # glorot_uniform fills its range
    r = m.rnn.recurrent_kernel.detach()
    assert torch.allclose(r @ r.t(), torch.eye(50), atol=1e-5)  # orthogonal
    assert not m.rnn.bias.any() and not m.dense_bias.any()
    assert m.dense_kernel.abs().max() <= np.sqrt(6 / (20_000 + 1))


def test_same_seed_same_weights():
    a = BookClassifier(ModelConfig(units=5, maxlen=3, embedding_dims=4), torch.randn(6, 4), seed=7)
    b = BookClassifier(ModelConfig(units=5, maxlen=3, embedding_dims=4), torch.randn(6, 4), seed=7)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_summary_totals_and_columns():
    text = summary(ModelConfig(), vocabulary_size=1234)
    assert "Total params: 37,551\nTrainable params: 37,551\nNon-trainable params: 0" in text
    row = next(line for line in text.splitlines() if line.startswith("simple_rnn_1"))
    assert row.index("(None") == 29 and row.index("17550") == 55  # Keras 2 column positions
    assert "1,234 words x 300" in text


def test_forward_shapes_and_padding_rows_are_zero_vectors():
    m = model(units=4, maxlen=6, dims=5).eval()
    ids = torch.tensor([[1, 2, 0, 0, 0, 0], [3, 4, 5, 6, 7, 8]])
    assert m(ids).shape == (2,)
    h, last = m.rnn(torch.randn(2, 6, 5))
    assert h.shape == (2, 6, 4) and torch.equal(last, h[:, -1])
