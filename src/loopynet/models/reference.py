"""A NumPy float64 reference SimpleRNN with hand-written BPTT: the test oracle for the torch code.

Written like NLP in Action ch. 8, sections 8.1-8.1.2, in the style of karpathy's min-char-rnn; the
names are the equations (Keras layout, row vectors)::

    h[t] = tanh(x[t] @ W_xh + h[t-1] @ W_hh + b_h),    h[-1] = h0 (zeros by default)

Axes: B batch, T time, E features (embedding dims), H units. `params` dicts map names to arrays:
W_xh (E, H), W_hh (H, H), b_h (H,), and a head: W_dense (T*H, 1), b_dense (1,) for the book
classifier, W_hy (H, 1), b_y (1,) for the last-step and every-step heads.

Backprop through time (8.1.1) walks from the last step to step 0; at *every* step it computes that
step's weight corrections "as if in a bubble", sums them, and only the sum is applied, once per batch
(8.1.2.1 and 8.1.2.2; see `sgd_step`).
"""

from __future__ import annotations

import numpy as np


def forward(x, W_xh, W_hh, b_h, h0=None):
    """x (B, T, E) -> hs (B, T, H), every step's hidden state; hs is all `bptt` needs (8.1, 8.1.1)."""
    B, T, _ = x.shape
    h_prev = np.zeros((B, W_hh.shape[0])) if h0 is None else h0
    h = np.empty((T, B, W_hh.shape[0]))  # time-major: h[t] is (B, H)
    for t in range(T):
        h[t] = np.tanh(x[:, t] @ W_xh + h_prev @ W_hh + b_h)
        h_prev = h[t]
    return np.ascontiguousarray(h.transpose(1, 0, 2))


def bptt(x, hs, dhs, W_hh, h0=None, *, W_xh=None):
    """Backpropagation through time (NLP in Action 8.1.1-8.1.2).

    Args: x (B, T, E) inputs; hs (B, T, H) from `forward`; dhs (B, T, H) dloss/dh[t] arriving from
    the head at each step (nonzero only at T-1 for a last-step loss, 8.1.2.1; at every step for a
    tagger, 8.1.2.2); W_hh (H, H); h0 (B, H) or None (zeros); W_xh (E, H) only needed for dx.

    Returns (dx (B, T, E) or None when W_xh is not given, dW_xh (E, H), dW_hh (H, H), db_h (H,),
    dh0 (B, H)). The weight gradients are the *sums* of the corrections computed at each step.
    """
    B, T, E = x.shape
    H = W_hh.shape[0]
    h = hs.transpose(1, 0, 2)  # (T, B, H)
    h0 = np.zeros((B, H)) if h0 is None else h0
    dx = None if W_xh is None else np.zeros_like(x)
    dW_xh, dW_hh, db_h = np.zeros((E, H)), np.zeros((H, H)), np.zeros(H)
    dh_next = np.zeros((B, H))  # dloss/dh[t] through h[t+1]
    for t in reversed(range(T)):
        dh = dhs[:, t] + dh_next  # total gradient reaching h[t]
        da = dh * (1.0 - h[t] ** 2)  # through tanh: (B, H)
        h_prev = h[t - 1] if t > 0 else h0
        dW_xh += x[:, t].T @ da  # this step's corrections, summed, not applied yet
        dW_hh += h_prev.T @ da
        db_h += da.sum(axis=0)
        if dx is not None:
            dx[:, t] = da @ W_xh.T
        dh_next = da @ W_hh.T
    return dx, dW_xh, dW_hh, db_h, dh_next


def _bce(z, y):
    """Summed binary cross-entropy of sigmoid(z) vs y, and its gradient in z (stable for any z)."""
    loss = np.sum(np.logaddexp(0.0, z) - y * z)
    return loss, 1.0 / (1.0 + np.exp(-z)) - y


def _rnn_grads(x, hs, dhs, params):
    _, dW_xh, dW_hh, db_h, _ = bptt(x, hs, dhs, params["W_hh"])
    return {"W_xh": dW_xh, "W_hh": dW_hh, "b_h": db_h}


def classifier_loss_and_grads(x, y, params):
    """The book's classifier (8.1.5) without dropout: SimpleRNN -> Flatten -> Dense(1, sigmoid).

    x (B, T, E) word vectors, y (B,) labels in {0, 1}. logits = hs.reshape(B, T*H) @ W_dense + b_dense;
    loss = mean over the batch of the binary cross-entropy. Every step feeds the head, but there is one
    label, read after the last step (8.1.2.1). Returns (loss, grads) with grads for W_xh, W_hh, b_h,
    W_dense (T*H, 1), b_dense (1,).
    """
    B, T, _ = x.shape
    hs = forward(x, params["W_xh"], params["W_hh"], params["b_h"])
    flat = hs.reshape(B, -1)  # row-major over (T, H): Keras Flatten
    z = (flat @ params["W_dense"] + params["b_dense"])[:, 0]  # (B,)
    loss, dz = _bce(z, y)
    dz = dz[:, None] / B  # (B, 1), mean over batch
    grads = _rnn_grads(x, hs, (dz @ params["W_dense"].T).reshape(hs.shape), params)
    grads.update(W_dense=flat.T @ dz, b_dense=dz.sum(axis=0))
    return loss / B, grads


def last_step_loss_and_grads(x, y, params):
    """Loss at the last step only (8.1.2.1, Keras return_sequences=False): sigmoid(h[T-1] @ W_hy + b_y).

    x (B, T, E), y (B,). Mean BCE over the batch; grads for W_xh, W_hh, b_h, W_hy (H, 1), b_y (1,).
    """
    B = x.shape[0]
    hs = forward(x, params["W_xh"], params["W_hh"], params["b_h"])
    z = (hs[:, -1] @ params["W_hy"] + params["b_y"])[:, 0]  # (B,)
    loss, dz = _bce(z, y)
    dz = dz[:, None] / B
    dhs = np.zeros_like(hs)
    dhs[:, -1] = dz @ params["W_hy"].T  # the error enters at the last step only
    grads = _rnn_grads(x, hs, dhs, params)
    grads.update(W_hy=hs[:, -1].T @ dz, b_y=dz.sum(axis=0))
    return loss / B, grads


def every_step_loss_and_grads(x, y, params):
    """Loss at every step (8.1.2.2, a tagger): sigmoid(h[t] @ W_hy + b_y) against y[:, t] for each t.

    x (B, T, E), y (B, T). loss = sum over steps of the batch-mean BCE; grads for W_xh, W_hh, b_h,
    W_hy (H, 1), b_y (1,): each step's error is backpropagated to t=0 and all corrections are summed.
    """
    B = x.shape[0]
    hs = forward(x, params["W_xh"], params["W_hh"], params["b_h"])
    z = (hs @ params["W_hy"] + params["b_y"])[..., 0]  # (B, T)
    loss, dz = _bce(z, y)
    dz = dz[..., None] / B  # (B, T, 1)
    grads = _rnn_grads(x, hs, dz @ params["W_hy"].T, params)
    grads.update(W_hy=np.einsum("bth,bto->ho", hs, dz), b_y=dz.sum(axis=(0, 1)))
    return loss / B, grads


def sgd_step(params, grads, lr):
    """Apply the summed corrections once (8.1.2): returns new params, `p - lr * grads[p]` where given."""
    return {k: v - lr * grads[k] if k in grads else v for k, v in params.items()}
