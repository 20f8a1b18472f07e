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


# ---- LSTM and GRU (torch.nn.LSTM / torch.nn.GRU conventions: W_ih (G*H, E), W_hh (G*H, H), x @ W.T) ----
#
#   LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), gates i, f, g, o:
#       i = sig(x W_ii^T + b_ii + h_prev W_hi^T + b_hi)     f, o likewise;  g = tanh(...)
#       c[t] = f * c[t-1] + i * g,    h[t] = o * tanh(c[t])
#   GRU (Cho et al. 2014; torch's and cuDNN's variant: the reset gate multiplies W_hn h + b_hn):
#       r = sig(x W_ir^T + b_ir + h_prev W_hr^T + b_hr)     z likewise
#       n = tanh(x W_in^T + b_in + r * (h_prev W_hn^T + b_hn)),    h[t] = (1 - z) * n + z * h[t-1]


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def lstm_forward(x, W_ih, W_hh, b_ih, b_hh, h0=None, c0=None):
    """x (B, T, E) -> (hs (B, T, H), cache for `lstm_bptt`); h0, c0 (B, H) or None (zeros)."""
    B, T, _ = x.shape
    H = W_hh.shape[1]
    h_prev = np.zeros((B, H)) if h0 is None else h0
    c_prev = np.zeros((B, H)) if c0 is None else c0
    hs, cs, gates = np.empty((T, B, H)), np.empty((T, B, H)), np.empty((T, B, 4 * H))
    for t in range(T):
        a = x[:, t] @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh  # (B, 4H) pre-activations
        i, f, g, o = _sig(a[:, :H]), _sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), _sig(a[:, 3 * H:])
        cs[t] = f * c_prev + i * g
        hs[t] = o * np.tanh(cs[t])
        gates[t] = np.concatenate([i, f, g, o], axis=1)
        h_prev, c_prev = hs[t], cs[t]
    cache = {"x": x, "hs": hs, "cs": cs, "gates": gates, "h0": np.zeros((B, H)) if h0 is None else h0,
             "c0": np.zeros((B, H)) if c0 is None else c0}
    return np.ascontiguousarray(hs.transpose(1, 0, 2)), cache


def lstm_bptt(dhs, cache, W_ih, W_hh, dc_last=None):
    """BPTT of `lstm_forward`: dhs (B, T, H) = dloss/dh[t] from outside; dc_last (B, H) = dloss/dc[T-1] or None.

    Returns a dict: dx (B, T, E), dW_ih, dW_hh, db_ih, db_hh, dh0, dc0; weight gradients summed over steps.
    """
    x, hs, cs, gates = cache["x"], cache["hs"], cache["cs"], cache["gates"]
    T, B, H = hs.shape
    grads = {"dx": np.zeros_like(x), "dW_ih": np.zeros_like(W_ih), "dW_hh": np.zeros_like(W_hh),
             "db_ih": np.zeros(4 * H), "db_hh": np.zeros(4 * H)}
    dh_next = np.zeros((B, H))
    dc_next = np.zeros((B, H)) if dc_last is None else dc_last
    for t in reversed(range(T)):
        i, f, g, o = (gates[t][:, k * H:(k + 1) * H] for k in range(4))
        h_prev = hs[t - 1] if t else cache["h0"]
        c_prev = cs[t - 1] if t else cache["c0"]
        dh = dhs[:, t] + dh_next
        tanh_c = np.tanh(cs[t])
        dc = dc_next + dh * o * (1.0 - tanh_c ** 2)
        da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                             dh * tanh_c * o * (1 - o)], axis=1)  # (B, 4H): through the gates' nonlinearities
        grads["dW_ih"] += da.T @ x[:, t]
        grads["dW_hh"] += da.T @ h_prev
        grads["db_ih"] += da.sum(axis=0)
        grads["db_hh"] += da.sum(axis=0)
        grads["dx"][:, t] = da @ W_ih
        dh_next, dc_next = da @ W_hh, dc * f
    grads.update(dh0=dh_next, dc0=dc_next)
    return grads


def gru_forward(x, W_ih, W_hh, b_ih, b_hh, h0=None):
    """x (B, T, E) -> (hs (B, T, H), cache for `gru_bptt`); h0 (B, H) or None (zeros)."""
    B, T, _ = x.shape
    H = W_hh.shape[1]
    h_prev = np.zeros((B, H)) if h0 is None else h0
    hs, gates = np.empty((T, B, H)), np.empty((T, B, 4 * H))
    for t in range(T):
        gx = x[:, t] @ W_ih.T + b_ih  # (B, 3H)
        hh = h_prev @ W_hh.T + b_hh  # (B, 3H)
        r = _sig(gx[:, :H] + hh[:, :H])
        z = _sig(gx[:, H:2 * H] + hh[:, H:2 * H])
        n = np.tanh(gx[:, 2 * H:] + r * hh[:, 2 * H:])
        hs[t] = (1 - z) * n + z * h_prev
        gates[t] = np.concatenate([r, z, n, hh[:, 2 * H:]], axis=1)
        h_prev = hs[t]
    cache = {"x": x, "hs": hs, "gates": gates, "h0": np.zeros((B, H)) if h0 is None else h0}
    return np.ascontiguousarray(hs.transpose(1, 0, 2)), cache


def gru_bptt(dhs, cache, W_ih, W_hh):
    """BPTT of `gru_forward`: dhs (B, T, H) = dloss/dh[t] from outside.

    Returns a dict: dx (B, T, E), dW_ih, dW_hh, db_ih, db_hh, dh0; weight gradients summed over steps.
    """
    x, hs, gates = cache["x"], cache["hs"], cache["gates"]
    T, B, H = hs.shape
    grads = {"dx": np.zeros_like(x), "dW_ih": np.zeros_like(W_ih), "dW_hh": np.zeros_like(W_hh),
             "db_ih": np.zeros(3 * H), "db_hh": np.zeros(3 * H)}
    dh_next = np.zeros((B, H))
    for t in reversed(range(T)):
        r, z, n, hh_n = (gates[t][:, k * H:(k + 1) * H] for k in range(4))
        h_prev = hs[t - 1] if t else cache["h0"]
        dh = dhs[:, t] + dh_next
        dan = dh * (1 - z) * (1 - n ** 2)  # through n = tanh(a_n)
        dar = dan * hh_n * r * (1 - r)
        daz = dh * (h_prev - n) * z * (1 - z)
        dgx = np.concatenate([dar, daz, dan], axis=1)  # (B, 3H): gradient of x W_ih^T + b_ih
        dgh = np.concatenate([dar, daz, dan * r], axis=1)  # gradient of h_prev W_hh^T + b_hh
        grads["dW_ih"] += dgx.T @ x[:, t]
        grads["dW_hh"] += dgh.T @ h_prev
        grads["db_ih"] += dgx.sum(axis=0)
        grads["db_hh"] += dgh.sum(axis=0)
        grads["dx"][:, t] = dgx @ W_ih
        dh_next = dh * z + dgh @ W_hh
    grads["dh0"] = dh_next
    return grads
