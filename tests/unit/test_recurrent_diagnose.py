"""Gradient diagnosis: per-step ‖∂loss/∂h_t‖ equals autograd through the rest of the sequence; CLI writes PNG + JSON."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from loopynet.cli import main
from loopynet.config import ModelConfig
from loopynet.inspect.gradients import stepwise_gradients
from loopynet.models.recurrent_classifier import RecurrentClassifier


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_stepwise_gradient_equals_gradient_through_the_remaining_steps(cell):
    torch.manual_seed(0)
    emb = torch.randn(20, 4)
    model = RecurrentClassifier(ModelConfig(units=3, dropout=0.0, embedding_dims=4, maxlen=7, cell=cell, head="last"), emb)
    ids = torch.randint(1, 20, (5, 7))
    labels = torch.tensor([0, 1, 1, 0, 1])
    grads = stepwise_gradients(model, ids, labels)
    assert grads["hidden"].shape == (7,)
    direction = model.layers[0][0]
    x = emb[ids]
    for t in (0, 3):  # the state after step t+1 as the initial state of the rest
        _, state = direction.run(x[:, : t + 1])
        state = tuple(s.detach().requires_grad_() for s in state) if cell == "lstm" else state.detach().requires_grad_()
        out, _ = direction.run(x[:, t + 1 :], state)
        loss = F.binary_cross_entropy_with_logits((out[:, -1] @ model.dense_kernel + model.dense_bias)[:, 0],
                                                  labels.float(), reduction="sum")
        loss.backward()
        h = state[0] if cell == "lstm" else state
        expected = h.grad.reshape(5, -1).norm(dim=1).mean().item()
        assert grads["hidden"][t] == pytest.approx(expected, rel=1e-4)


def test_cli_writes_png_and_json(tiny_imdb, tiny_vectors, tmp_path, capsys):
    out = tmp_path / "docs"
    assert main(["diagnose", "gradients", "--data", str(tiny_imdb), "--vectors", str(tiny_vectors), "--out", str(out),
                 "--cells", "rnn,lstm", "--maxlen", "8", "--batches", "2", "--batch-size", "4", "--train-steps", "2"]) == 0
    result = json.loads((out / "gradients.json").read_text())
    assert set(result["cells"]) == {"rnn", "lstm"}
    assert len(result["cells"]["rnn"]["init"]["hidden"]) == 8 and "trained" in result["cells"]["lstm"]
    assert (out / "gradients.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["diagnose", "gradients", "--data", str(tiny_imdb), "--vectors", str(tiny_vectors), "--cells", "elman"]) == 2
