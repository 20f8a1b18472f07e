"""The chapter's update rule for a tagger (NLP in Action 8.1.2.2), checked against the NumPy reference:
with a loss at every step, the gradient is the sum over steps of each step's BPTT contribution
(each step's error flows back to t=0 only), padding contributes nothing, and the weights change once
per batch. Uses the `rnn` cell (loopynet's Keras SimpleRNN), float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from loopynet.config import TrainConfig
from loopynet.data.conll import TAGS
from loopynet.models import reference
from loopynet.config import TaggerConfig
from loopynet.models.tagger import SequenceTagger
from loopynet.tasks.tagging.encoding import TaggedDocs, pad_batch
from loopynet.tasks.tagging.task import TaggingTask
from loopynet.train.loop import fit

V, E, H, K = 12, 5, 4, len(TAGS)
LENGTHS = [6, 3, 5]

pytestmark = pytest.mark.usefixtures("one_thread")



def make():
    rng = np.random.default_rng(0)
    words = [rng.integers(2, V, n) for n in LENGTHS]
    tags = [rng.integers(0, K, n) for n in LENGTHS]
    docs = TaggedDocs(words, [np.ones(n, np.int64) for n in LENGTHS], [np.ones((n, 1), np.int64) for n in LENGTHS],
                      tags, [["w"] * n for n in LENGTHS])
    config = TaggerConfig(cell="rnn", units=H, bidirectional=False, dropout=0.0, casing_dims=0, char_filters=0,
                          crf=False, vocab_size=V, embedding_dims=E, num_tags=K)
    table = torch.from_numpy(rng.normal(0, 1, (V, E)))
    table[0] = 0
    return SequenceTagger(config, table, seed=0).double(), docs


def reference_grads(model, batch, steps=None):
    """Softmax-per-step loss (sum over real tokens / B) and grads by reference.forward + reference.bptt.

    With `steps`, only the errors of those time steps are backpropagated (one step's contribution).
    """
    words, _, _, lengths, tags = batch
    B, T = words.shape
    W_xh, W_hh, b_h = (p.detach().numpy() for p in (model.rnn.kernel, model.rnn.recurrent_kernel, model.rnn.bias))
    W_hy, b_y = model.dense.weight.detach().numpy().T, model.dense.bias.detach().numpy()  # (H, K), (K,)
    x = model.embedding.weight.detach().numpy()[words]  # (B, T, E)
    hs = reference.forward(x, W_xh, W_hh, b_h)
    z = hs @ W_hy + b_y
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    mask = np.arange(T)[None, :] < lengths[:, None]
    if steps is not None:
        mask = mask & np.isin(np.arange(T), steps)[None, :]
    loss = -np.sum(np.log(np.take_along_axis(p, tags[..., None], -1))[..., 0] * mask) / B
    dz = (p - np.eye(K)[tags]) * mask[..., None] / B  # (B, T, K)
    dx, dW_xh, dW_hh, db_h, _ = reference.bptt(x, hs, dz @ W_hy.T, W_hh, W_xh=W_xh)
    grads = {"rnn.kernel": dW_xh, "rnn.recurrent_kernel": dW_hh, "rnn.bias": db_h,
             "dense.weight": np.einsum("bth,btk->kh", hs, dz), "dense.bias": dz.sum((0, 1))}
    return loss, grads, dx


def torch_grads(model, batch):
    loss, _, _ = TaggingTask(list(TAGS)).loss(model, batch)
    model.zero_grad()
    loss.backward()
    return float(loss.detach()), {n: p.grad.numpy().copy() for n, p in model.named_parameters() if p.grad is not None}


def test_every_step_gradients_match_the_reference():
    model, docs = make()
    batch = pad_batch(docs, [0, 1, 2])
    loss, grads = torch_grads(model, batch)
    ref_loss, ref, _ = reference_grads(model, batch)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    assert set(grads) == set(ref)
    for name in ref:
        np.testing.assert_allclose(grads[name], ref[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_gradient_is_the_sum_of_each_steps_bptt_contribution():
    model, docs = make()
    batch = pad_batch(docs, [0, 1, 2])
    T = batch[0].shape[1]
    _, full, _ = reference_grads(model, batch)
    summed = {k: np.zeros_like(v) for k, v in full.items()}
    for t in range(T):
        _, step, dx = reference_grads(model, batch, steps=[t])
        assert np.all(dx[:, t + 1:] == 0)  # step t's error reaches only steps <= t ("as if in a bubble")
        if t > 0:
            assert np.abs(step["rnn.recurrent_kernel"]).sum() > 0  # ... and flows back through earlier steps
        for k in summed:
            summed[k] += step[k]
    _, grads = torch_grads(model, batch)
    for name in full:
        np.testing.assert_allclose(summed[name], full[name], rtol=1e-10, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(grads[name], summed[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_padding_steps_contribute_nothing():
    model, docs = make()
    _, padded = torch_grads(model, pad_batch(docs, [0, 1, 2]))  # sentences 1 and 2 padded to 6 steps
    B = 3
    alone = [torch_grads(model, pad_batch(docs, [i]))[1] for i in range(B)]
    for name in padded:
        np.testing.assert_allclose(padded[name] * B, sum(a[name] for a in alone), rtol=1e-10, atol=1e-12)


def test_weights_change_once_per_batch_by_the_summed_correction():
    model, docs = make()
    batch = pad_batch(docs, [0, 1, 2])
    _, ref, _ = reference_grads(model, batch)
    before = {n: p.detach().clone().numpy() for n, p in model.named_parameters() if p.requires_grad}
    steps = []
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: steps.append(1))
    try:
        config = TrainConfig(batch_size=3, epochs=1, optimizer="rmsprop", lr=0.01, seed=0)
        fit(model, TaggingTask(list(TAGS)), config, docs, None, progress=False)
    finally:
        handle.remove()
    assert len(steps) == 1  # 3 sentences, batch 3: one update
    for name, g in ref.items():  # RMSprop's first step: p - lr * g / (sqrt((1 - rho) g^2) + eps)
        expected = before[name] - 0.01 * g / (np.sqrt((1 - 0.9) * g * g) + 1e-7)
        np.testing.assert_allclose(dict(model.named_parameters())[name].detach().numpy(), expected, rtol=1e-9,
                                   atol=1e-12, err_msg=name)


@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_one_update_per_batch(batch_size):
    model, docs = make()
    steps = []
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: steps.append(1))
    try:
        fit(model, TaggingTask(list(TAGS)), TrainConfig(batch_size=batch_size, epochs=2, seed=0), docs, None, progress=False)
    finally:
        handle.remove()
    assert len(steps) == 2 * math.ceil(len(docs) / batch_size)
