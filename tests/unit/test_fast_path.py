"""The compiled fast path (models/kernel.c via models/fast_kernel.py) against the PyTorch path and the
NumPy reference: forward values, exact gradients, one RMSprop step; the fallback and the build cache."""

from __future__ import annotations

import shutil
import threading
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose

from loopynet.config import ModelConfig
from loopynet.models import classifier, fast_kernel
from loopynet.models import reference as ref
from loopynet.models.classifier import BookClassifier, dropout_dense, dropout_mask
from loopynet.models.recurrence import simple_recurrence
from loopynet.models.simple_rnn import SimpleRNN

PATHS = ["compiled", "torch"]
NAMES = {"W_xh": "rnn.kernel", "W_hh": "rnn.recurrent_kernel", "b_h": "rnn.bias", "W_dense": "dense_kernel",
         "b_dense": "dense_bias"}


@pytest.fixture
def use(monkeypatch):
    """use(path): route the next calls to the compiled kernels or the PyTorch path (LOOPYNET_KERNEL)."""

    def route(path):
        if path == "torch":
            monkeypatch.setenv(fast_kernel.ENV, "torch")
        else:
            monkeypatch.delenv(fast_kernel.ENV, raising=False)
            assert fast_kernel.kernels() is not None, "compiled kernels unavailable"

    return route


@pytest.fixture
def forget(monkeypatch):
    """Forget the loaded library and any failure (restored afterwards), and ignore a library installed with
    the package (these tests are about the run-time build; tests/unit/test_installed_kernels.py covers it)."""
    monkeypatch.setattr(fast_kernel, "_loaded", None)
    monkeypatch.setattr(fast_kernel, "_failure", None)
    monkeypatch.setattr(fast_kernel, "installed_library", lambda: None)
    monkeypatch.delenv(fast_kernel.ENV, raising=False)


@pytest.fixture
def fresh_state(forget, monkeypatch, tmp_path):
    """`forget`, and build into an empty cache."""
    monkeypatch.setenv("LOOPYNET_HOME", str(tmp_path / "home"))
    return tmp_path


# --- build, cache, fallback ----------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler here")
def test_kernels_build_and_load_where_a_compiler_exists(forget, use):
    use("compiled")
    path = fast_kernel.kernels().path
    assert path.parent == fast_kernel.cache_dir() / "kernels" and path.suffix == ".so"


def test_env_var_forces_the_torch_path(use):
    a, W = torch.randn(5, 3, 4), torch.randn(4, 4)
    W.requires_grad_()
    use("torch")
    assert fast_kernel.kernels() is None
    assert "SimpleRecurrence" in simple_recurrence(a, W).grad_fn.name()
    use("compiled")
    assert "CompiledRecurrence" in simple_recurrence(a, W).grad_fn.name()


def test_no_compiler_falls_back_to_torch_and_warns_once(fresh_state, monkeypatch):
    monkeypatch.setenv("PATH", str(fresh_state))  # an empty folder: no cc, gcc or clang
    monkeypatch.delenv("CC", raising=False)
    with pytest.warns(RuntimeWarning, match="no C compiler found"):
        assert fast_kernel.kernels() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fast_kernel.kernels() is None  # warned once per process
        h = simple_recurrence(torch.randn(5, 2, 4), torch.randn(4, 4, requires_grad=True))
    assert "SimpleRecurrence" in h.grad_fn.name()


def test_failed_compile_falls_back_with_the_compiler_message(fresh_state, monkeypatch):
    monkeypatch.setattr(fast_kernel, "FLAGS", ("--definitely-not-a-flag",))
    with pytest.warns(RuntimeWarning, match="definitely-not-a-flag"):
        assert fast_kernel.kernels() is None


def test_cache_hit_does_not_recompile(forget, monkeypatch):
    first = fast_kernel.load()  # built by now (or here) in the session's cache
    assert first.path.exists()

    def no_build(*args):
        raise AssertionError("recompiled although the library was cached")

    monkeypatch.setattr(fast_kernel, "build", no_build)
    assert fast_kernel.load().path == first.path


def test_two_concurrent_builds_are_harmless(fresh_state):
    compiler, flags = fast_kernel.find_compiler(), fast_kernel.FLAGS
    path = fast_kernel.cache_dir() / "kernels" / f"{fast_kernel.build_key(compiler, flags)}.so"
    errors = []

    def build():
        try:
            fast_kernel.build(compiler, flags, path)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left behind
    a, W = torch.randn(3, 2, 5, dtype=torch.float64), torch.randn(5, 5, dtype=torch.float64)
    h = torch.empty_like(a)
    fast_kernel.load().rnn_forward(a, W, torch.zeros(2, 5, dtype=torch.float64), h)
    assert torch.allclose(h, simple_recurrence(a, W))


# --- the recurrence ------------------------------------------------------------------------------


@pytest.mark.parametrize("T, B, H", [(1, 1, 1), (7, 13, 5), (9, 8, 16), (4, 17, 50), (3, 3, 100)])
def test_compiled_recurrence_equals_torch_and_reference_float64(T, B, H, use):
    g = torch.Generator().manual_seed(T * B * H)
    a = torch.randn(T, B, H, generator=g, dtype=torch.float64)
    W = torch.randn(H, H, generator=g, dtype=torch.float64) / H**0.5
    h0, G = torch.randn(B, H, generator=g, dtype=torch.float64), torch.randn(T, B, H, generator=g, dtype=torch.float64)
    results = {}
    for path in PATHS:
        use(path)
        leaves = [x.clone().requires_grad_() for x in (a, W, h0)]
        h = simple_recurrence(*leaves)
        (h * G).sum().backward()
        results[path] = [h.detach()] + [x.grad for x in leaves]
    for c, t in zip(results["compiled"], results["torch"]):
        assert_allclose(c.numpy(), t.numpy(), atol=1e-12, rtol=1e-12)
    # the NumPy oracle: x = a with W_xh = I, b = 0
    eye = np.eye(H)
    hs = ref.forward(a.numpy().transpose(1, 0, 2), eye, W.numpy(), np.zeros(H), h0.numpy())
    da, _, dW, _, dh0 = ref.bptt(a.numpy().transpose(1, 0, 2), hs, G.numpy().transpose(1, 0, 2), W.numpy(),
                                 h0.numpy(), W_xh=eye)  # dx = da @ I
    h, ga, gW, gh0 = results["compiled"]
    assert_allclose(h.numpy(), hs.transpose(1, 0, 2), atol=1e-12)
    assert_allclose(ga.numpy(), da.transpose(1, 0, 2), atol=1e-12)
    assert_allclose(gW.numpy(), dW, atol=1e-11)
    assert_allclose(gh0.numpy(), dh0, atol=1e-12)


def test_compiled_float32_is_within_1e5_of_the_float64_reference(use):
    g = torch.Generator().manual_seed(1)
    T, B, H = 40, 12, 50
    a = torch.randn(T, B, H, generator=g, dtype=torch.float64)
    W = torch.linalg.qr(torch.randn(H, H, generator=g, dtype=torch.float64))[0]
    G = torch.randn(T, B, H, generator=g, dtype=torch.float64) / 10
    use("compiled")
    leaves = [a.float().requires_grad_(), W.float().requires_grad_()]
    h = simple_recurrence(*leaves)
    (h * G.float()).sum().backward()
    eye = np.eye(H)
    hs = ref.forward(a.numpy().transpose(1, 0, 2), eye, W.numpy(), np.zeros(H))
    da, _, dW, _, _ = ref.bptt(a.numpy().transpose(1, 0, 2), hs, G.numpy().transpose(1, 0, 2), W.numpy(), W_xh=eye)
    assert_allclose(h.detach().numpy(), hs.transpose(1, 0, 2), atol=1e-5)
    assert_allclose(leaves[0].grad.numpy(), da.transpose(1, 0, 2), atol=1e-5)
    assert_allclose(leaves[1].grad.numpy(), dW, atol=1e-5, rtol=1e-5)


def test_float32_tanh_is_accurate_and_keeps_nan(use):
    use("compiled")
    x = torch.cat([torch.linspace(-12, 12, 200_001), torch.linspace(-1e-3, 1e-3, 2001),
                   torch.tensor([float("nan"), float("inf"), -float("inf")])])
    n = x.numel()
    h = torch.empty(1, n, 1)
    fast_kernel.kernels().rnn_forward(x.view(1, n, 1), torch.zeros(1, 1), torch.zeros(n, 1), h)
    h, exact = h.view(-1), torch.tanh(x.double())
    finite = torch.isfinite(exact)
    assert (h.double() - exact)[finite].abs().max() < 4e-7  # a few float ulps, like torch.tanh
    assert torch.isnan(h[-3]) and h[-2] == 1 and h[-1] == -1


# --- token-id input projection and the head ------------------------------------------------------


@pytest.mark.parametrize("V", [23, 5000])  # 5000 > 64 * B * T: distinct ids by torch.unique
@pytest.mark.parametrize("path", PATHS)
def test_forward_ids_equals_forward_on_looked_up_vectors(path, V, use):
    g = torch.Generator().manual_seed(2)
    E, H, B, T = 7, 9, 5, 11
    table = torch.randn(V, E, generator=g, dtype=torch.float64)
    table[0] = 0
    ids = torch.randint(0, V, (B, T), generator=g)
    ids[0, -4:] = 0  # padding, and plenty of repeated ids
    rnn = SimpleRNN(E, H, g).double()
    h0 = torch.randn(B, H, generator=g, dtype=torch.float64)
    use(path)
    out, last = rnn.forward_ids(ids, table, h0)
    (out.sum() + last.sum()).backward()
    grads = [p.grad.clone() for p in rnn.parameters()]
    rnn.zero_grad()
    use("torch")
    out2, last2 = rnn(table[ids], h0)
    (out2.sum() + last2.sum()).backward()
    assert_allclose(out.detach().numpy(), out2.detach().numpy(), atol=1e-12)
    assert_allclose(last.detach().numpy(), last2.detach().numpy(), atol=1e-12)
    for mine, theirs in zip(grads, rnn.parameters()):
        assert_allclose(mine.numpy(), theirs.grad.numpy(), atol=1e-11)


@pytest.mark.parametrize("V", [5, 500])
@pytest.mark.parametrize("path", PATHS)
def test_out_of_range_token_id_raises_index_error(path, V, use):
    use(path)
    rnn = SimpleRNN(3, 2)
    for bad in (V, -1):
        with pytest.raises(IndexError):
            rnn.forward_ids(torch.tensor([[0, 1, bad]]), torch.randn(V, 3))


def test_dropout_dense_compiled_equals_torch_with_the_same_mask(use):
    g = torch.Generator().manual_seed(3)
    T, B, H, p = 6, 11, 7, 0.3  # B: a whole block of ROWS = 8 batch rows and a partial one
    h = torch.randn(T, B, H, generator=g, dtype=torch.float64)
    kernel, bias = torch.randn(T * H, 1, generator=g, dtype=torch.float64), torch.randn(1, dtype=torch.float64)
    mask = (torch.rand(T, B, H, generator=g) >= p).to(torch.uint8)
    dz = torch.randn(B, generator=g, dtype=torch.float64)
    results = {}
    for path in PATHS:
        use(path)
        leaves = [x.clone().requires_grad_() for x in (h, kernel, bias)]
        z = dropout_dense(*leaves, p, mask)
        (z * dz).sum().backward()
        results[path] = [z.detach()] + [x.grad for x in leaves]
    for c, t in zip(results["compiled"], results["torch"]):
        assert_allclose(c.numpy(), t.numpy(), atol=1e-12)
    # and the definition: Dense over the Keras flatten of the masked, rescaled states
    flat = (h * mask / (1 - p)).transpose(0, 1).reshape(B, T * H)
    assert_allclose(results["compiled"][0].numpy(), (flat @ kernel + bias)[:, 0].numpy(), atol=1e-12)


@pytest.mark.parametrize("path", PATHS)
def test_dropout_mask_keeps_one_minus_p_and_follows_torch_seed(path, use):
    use(path)
    kernels = fast_kernel.kernels()
    torch.manual_seed(0)
    a = dropout_mask((200, 50, 50), 0.2, kernels)
    torch.manual_seed(0)
    b = dropout_mask((200, 50, 50), 0.2, kernels)
    c = dropout_mask((200, 50, 50), 0.2, kernels)
    n = a.numel()
    assert a.dtype == torch.uint8 and torch.equal(a, b) and not torch.equal(b, c)
    assert abs(a.double().mean().item() - 0.8) < 4 * (0.8 * 0.2 / n) ** 0.5
    assert abs(a[:, :, 0].double().mean().item() - 0.8) < 4 * (0.8 * 0.2 / (n / 50)) ** 0.5  # no lane bias
    pairs = (a[:, :, :-1] & a[:, :, 1:]).double().mean().item()  # neighbours independent
    assert abs(pairs - 0.64) < 4 * (0.64 * 0.36 / n) ** 0.5


@pytest.mark.parametrize("path", PATHS)
def test_dropout_scales_kept_states_like_nn_dropout(path, use):
    use(path)
    T, B, H = 3, 4, 5
    h = torch.ones(T, B, H)
    kernel, bias = torch.ones(T * H, 1), torch.zeros(1)
    torch.manual_seed(1)
    z = dropout_dense(h, kernel, bias, 0.5)
    torch.manual_seed(1)
    kept = dropout_mask((T, B, H), 0.5, fast_kernel.kernels()).sum(dim=(0, 2)).float()
    assert torch.allclose(z, 2.0 * kept)
    assert torch.equal(dropout_dense(h, kernel, bias, 1.0), torch.zeros(B))
    assert torch.equal(dropout_dense(h, kernel, bias, 0.0), torch.full((B,), float(T * H)))
    with pytest.raises(ValueError, match="expected \\(15, 1\\)"):
        dropout_dense(h, torch.ones(T * H + 1, 1), bias, 0.0)


# --- the whole model: one RMSprop step ------------------------------------------------------------


def _rmsprop_reference(params, grads, lr=1e-3, alpha=0.9, eps=1e-7):
    """One step from zero state: v = (1 - alpha) g^2; p -= lr g / (sqrt(v) + eps) (torch/Keras 2 form)."""
    return {k: params[k] - lr * g / (np.sqrt((1 - alpha) * g * g) + eps) for k, g in grads.items()}


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_one_rmsprop_step_matches_reference_on_both_paths(dtype, tol, use):
    g = torch.Generator().manual_seed(4)
    V, E, H, T, B = 17, 6, 5, 9, 4
    emb = torch.randn(V, E, generator=g, dtype=torch.float64)
    emb[0] = 0
    ids = torch.randint(0, V, (B, T), generator=g)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0])
    bias = torch.randn(H, generator=g, dtype=torch.float64) * 0.1
    after = {}
    for path in PATHS:
        use(path)
        model = BookClassifier(ModelConfig(units=H, dropout=0.2, embedding_dims=E, maxlen=T), emb, seed=4).to(dtype)
        with torch.no_grad():
            model.embeddings.copy_(emb)
            model.rnn.bias.copy_(bias)
        before = {k: p.detach().double().numpy().copy() for k, p in model.named_parameters()}
        model.eval()  # dropout off: the reference has none
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
        loss = F.binary_cross_entropy_with_logits(model(ids), y.to(dtype))
        loss.backward()
        opt.step()
        after[path] = {k: p.detach().double().numpy() for k, p in model.named_parameters()}
    params = {r: before[t] for r, t in NAMES.items()}
    _, grads = ref.classifier_loss_and_grads(emb[ids].numpy(), y.numpy(), params)
    expected = _rmsprop_reference(params, grads)
    for r, t in NAMES.items():
        for path in PATHS:
            assert_allclose(after[path][t], expected[r], atol=tol, rtol=tol, err_msg=f"{path} {t}")


def test_training_mode_draws_a_fresh_mask_and_eval_is_deterministic(use):
    use("compiled")
    model = BookClassifier(ModelConfig(units=4, dropout=0.5, embedding_dims=3, maxlen=6), torch.randn(9, 3))
    ids = torch.randint(0, 9, (3, 6))
    model.train()
    assert not torch.equal(model(ids), model(ids))
    model.eval()
    assert torch.equal(model(ids), model(ids))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("masked", [True, False])
def test_head_and_dW_hh_summed_in_the_time_loops_equal_the_separate_kernels(dtype, masked, use):
    """rnn_forward's logits and rnn_backward's dw are head_forward's and head_backward's, bit for bit; its dW_hh
    is accumulate_xt_d's sum of h[t-1]^T da[t] (h[-1] = h0), to rounding (B = 19: two blocks of 8 rows and 3)."""
    use("compiled")
    k = fast_kernel.kernels()
    g = torch.Generator().manual_seed(5)
    T, B, H, scale, bias = 6, 19, 13, 1.25, 0.3

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    a, W, h0, w, dz = r(T, B, H), r(H, H) * 0.4, r(B, H), r(T * H, 1), r(B)
    mask = torch.randint(0, 2, (T, B, H), generator=g, dtype=torch.uint8) if masked else None
    h, z = torch.empty_like(a), torch.empty(B, dtype=dtype)
    k.rnn_forward(a, W, h0, h, head=(mask, w, scale, bias, z))
    h_alone, z_alone = torch.empty_like(a), torch.empty(B, dtype=dtype)
    k.rnn_forward(a, W, h0, h_alone)
    k.head_forward(h_alone, mask, w, scale, bias, z_alone)
    assert torch.equal(h, h_alone) and torch.equal(z, z_alone)
    da, dh0, dW, dw = torch.empty_like(h), torch.empty_like(h0), torch.empty_like(W), torch.empty_like(w)
    k.rnn_backward(None, h, W, da, dh0, head=(dz, mask, w, scale), dW=dW, h0=h0, dw=dw)
    dh, da_alone = torch.empty_like(h), torch.empty_like(h)
    dw_alone, dh0_alone = torch.empty_like(w), torch.empty_like(h0)
    k.head_backward(dz, h, mask, w, scale, dh, dw_alone)
    k.rnn_backward(dh, h, W, da_alone, dh0_alone)
    assert torch.equal(dw, dw_alone) and torch.equal(da, da_alone) and torch.equal(dh0, dh0_alone)
    dW_alone = torch.zeros_like(W)
    k.accumulate_xt_d(h0, None, da[0], dW_alone)
    k.accumulate_xt_d(h[:-1].reshape(-1, H), None, da[1:].reshape(-1, H), dW_alone)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert_allclose(dW.numpy(), dW_alone.numpy(), rtol=tol, atol=tol)
    assert_allclose(dW.numpy(), (torch.cat([h0[None], h[:-1]]).reshape(-1, H).T @ da.reshape(-1, H)).numpy(),
                    rtol=tol, atol=tol)


def test_sums_over_no_batch_rows_are_zeros(use):
    """B = 0: no block of rows holds a partial sum; dW_hh and the head's dw are written as zeros."""
    use("compiled")
    T, H = 5, 7
    h, dW, dw = torch.empty(T, 0, H), torch.full((H, H), 7.0), torch.full((T * H, 1), 7.0)
    fast_kernel.kernels().rnn_backward(None, h, torch.randn(H, H), torch.empty_like(h), torch.empty(0, H),
                                       head=(torch.empty(0), None, torch.randn(T * H, 1), 1.0), dW=dW, dw=dw)
    assert torch.equal(dW, torch.zeros(H, H)) and torch.equal(dw, torch.zeros(T * H, 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_node_network_is_bit_for_bit_the_chain_of_kernels(dtype, use, monkeypatch):
    """`CompiledBookNetwork` (the network as one autograd node: the recurrence reads the projection's rows,
    BPTT makes the head's dh) against the chain TokenProjection -> CompiledRecurrence -> DropoutDense on the
    same dropout draw: identical logits and gradients, and the phases it reports in order."""
    use("compiled")
    g = torch.Generator().manual_seed(8)
    V, E, H, T, B = 23, 6, 21, 9, 11
    model = BookClassifier(ModelConfig(units=H, dropout=0.3, embedding_dims=E, maxlen=T),
                           torch.randn(V, E, generator=g), seed=3).to(dtype)
    ids, y = torch.randint(0, V, (B, T), generator=g), torch.randint(0, 2, (B,), generator=g).to(dtype)
    phases = []
    monkeypatch.setattr(classifier, "phase_hook", phases.append)
    results = []
    for one_node in (True, False):
        model.zero_grad()
        torch.manual_seed(1)
        if one_node:
            logits = model(ids)
            assert logits.grad_fn.name() == "CompiledBookNetworkBackward"
        else:
            out, _ = model.rnn.forward_ids(ids, model.embeddings)
            logits = model.head(out)
        F.binary_cross_entropy_with_logits(logits, y).backward()
        results.append([logits.detach()] + [p.grad.clone() for p in model.parameters()])
    for a, b in zip(*results):
        assert torch.equal(a, b)
    assert phases == ["embedding+projection", "recurrence fwd", "head bwd", "recurrence bwd (+dW_hh)",
                      "projection bwd (scatter + dW_xh)"]


# --- the buffer pool ---------------------------------------------------------------------------------


def test_buffer_pool_reuses_only_buffers_no_tensor_uses():
    pool = fast_kernel.BufferPool(per_shape=2)
    a = pool.empty((3, 4), torch.float32)
    b = pool.empty((3, 4), torch.float32)
    assert a.data_ptr() != b.data_ptr()
    address = a.data_ptr()
    row = a[1]  # a view keeps the buffer in use
    del a
    assert pool.empty((3, 4), torch.float32).data_ptr() != address  # a third, unpooled tensor
    del row
    assert pool.empty((3, 4), torch.float32).data_ptr() == address
    assert pool.empty((5,), torch.uint8).dtype == torch.uint8


@pytest.mark.parametrize("shape, dtype", [((400, 32, 50), torch.float32), ((7, 3), torch.float64),
                                          ((13,), torch.uint8), ((0, 5), torch.float32)])
def test_pooled_buffers_start_on_a_cache_line(shape, dtype):
    """Threads write whole blocks of batch rows of these arrays: a buffer starting mid-line would put the line
    across two threads' rows under both (false sharing). Reused buffers keep their place."""
    pool = fast_kernel.BufferPool()
    first = pool.empty(shape, dtype)
    assert first.shape == shape and first.dtype == dtype and first.is_contiguous()
    assert first.data_ptr() % 64 == 0
    address = first.data_ptr()
    del first
    again = pool.empty(shape, dtype)
    assert again.data_ptr() == address and again.shape == shape


def test_graphs_alive_together_keep_their_own_buffers(use):
    """Pooled states saved for backward are not handed out again: two forwards, then one backward,
    give the gradients of two separate steps."""
    use("compiled")
    g = torch.Generator().manual_seed(5)
    model = BookClassifier(ModelConfig(units=6, dropout=0.0, embedding_dims=4, maxlen=9), torch.randn(12, 4, generator=g))
    batches = [torch.randint(0, 12, (5, 9), generator=g) for _ in range(2)]
    separate = []
    for ids in batches:
        model.zero_grad()
        model(ids).sum().backward()
        separate.append([p.grad.clone() for p in model.parameters()])
    model.zero_grad()
    first, second = (model(ids).sum() for ids in batches)
    (first + second).backward()
    for together, one, two in zip(model.parameters(), *separate):
        assert torch.allclose(together.grad, one + two, atol=1e-6)
