"""The compiled kernels' worker pool (models/kernel_common.h): every kernel gives bit-for-bit the same values on
1, 2 and 3 threads (each share's results are written by share id, whatever thread runs it), and the pool
survives concurrent calls, fork() and interpreter exit."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading

import pytest
import torch

from loopynet.config import ModelConfig
from loopynet.models import fast_kernel
from loopynet.models.classifier import BookClassifier

T, B, H, E, V = 7, 24, 12, 9, 40  # B = 3 tiles of ROWS = 8 rows: 3 shares on 3 threads


@pytest.fixture
def kernels():
    k = fast_kernel.kernels()
    assert k is not None, "compiled kernels unavailable"
    before = torch.get_num_threads()
    yield k
    torch.set_num_threads(before)


def every_kernel(k: fast_kernel.Kernels, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """Outputs of every multi-threaded kernel on fixed random inputs; the element-count-split ones (head,
    scatter, dropout mask) on inputs of >= 2**17 values, so that they too run on more than one thread."""
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    out = {}
    W, h0 = r(H, H) * 0.3, r(B, H)
    out["h"] = h = torch.empty(T, B, H, dtype=dtype)
    k.rnn_forward(r(T, B, H), W, h0, h)
    out["z_fused"] = torch.empty(B, dtype=dtype)  # the book head's logits summed inside the forward
    k.rnn_forward(r(T, B, H), W, h0, torch.empty_like(h), head=(torch.randint(0, 2, (T, B, H), generator=g,
                  dtype=torch.uint8), r(T * H, 1), 0.7, 0.1, out["z_fused"]))
    out["da"], out["dh0"], out["dW_hh"] = torch.empty_like(h), torch.empty(B, H, dtype=dtype), torch.empty_like(W)
    k.rnn_backward(r(T, B, H), h, W, out["da"], out["dh0"], dW=out["dW_hh"], h0=h0)
    out["da_head"], out["dh0_head"], out["dW_hh_head"] = torch.empty_like(h), torch.empty_like(h0), torch.empty_like(W)
    out["dw_fused"] = torch.empty(T * H, 1, dtype=dtype)  # the book head's gradients made inside the BPTT
    head = (r(B), torch.randint(0, 2, (T, B, H), generator=g, dtype=torch.uint8), r(T * H, 1), 0.7)
    k.rnn_backward(None, h, W, out["da_head"], out["dh0_head"], head=head, dW=out["dW_hh_head"], dw=out["dw_fused"])
    table, idx = r(V, E), torch.randint(0, V, (T * B,), generator=g)
    out["projection"] = torch.empty(T * B, H, dtype=dtype)
    k.project_rows(table, idx, r(E, H), r(H), out["projection"])
    out["xt_d"] = r(E, H)
    k.accumulate_xt_d(table, idx, out["projection"], out["xt_d"])
    big_t, big_b, big_h = 16, 32, 256  # 131,072 values
    hb, mask, w, dz = r(big_t, big_b, big_h), torch.randint(0, 2, (big_t, big_b, big_h), generator=g,
                                                             dtype=torch.uint8), r(big_t * big_h, 1), r(big_b)
    out["z"] = torch.empty(big_b, dtype=dtype)
    k.head_forward(hb, mask, w, 0.7, 0.1, out["z"])
    out["dh_head"], out["dw_head"] = torch.empty_like(hb), torch.empty(big_t, big_h, dtype=dtype)
    k.head_backward(dz, hb, mask, w, 0.7, out["dh_head"], out["dw_head"])
    out["scatter"] = torch.full((V, big_h), float("nan"), dtype=dtype)  # overwritten, rows no id maps to zeroed
    k.scatter_sum_rows(hb.reshape(-1, big_h), torch.randint(0, V, (big_t * big_b,), generator=g), out["scatter"])
    out["mask"] = torch.empty(2**18, dtype=torch.uint8)
    k.dropout_mask(out["mask"], 12345, 0.8)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    for cell, G in (("lstm", 4), ("gru", 3)):
        gx, W_hh, b_hh = r(T * B, G * H), r(G * H, H) * 0.3, r(G * H)
        hc, hprev, gates = (torch.empty(T, B, H, dtype=dtype), torch.empty(T, B, H, dtype=dtype),
                            torch.empty(T, B, 4 * H, dtype=dtype))
        dgx, d0 = torch.empty(T * B, G * H, dtype=dtype), torch.empty(B, H, dtype=dtype)
        if cell == "lstm":
            c0, c, dc0 = r(B, H), torch.empty(T, B, H, dtype=dtype), torch.empty(B, H, dtype=dtype)
            k.lstm_forward(gx, None, lengths, W_hh, b_hh, h0, c0, hc, hprev, c, gates)
            k.lstm_backward(r(T, B, H), r(B, H), lengths, W_hh, c0, c, gates, dgx, d0, dc0)
            out |= {"lstm_c": c, "lstm_dc0": dc0}
        else:
            dgh = torch.empty(T * B, G * H, dtype=dtype)
            k.gru_forward(gx, None, lengths, W_hh, b_hh, h0, hc, hprev, gates)
            k.gru_backward(r(T, B, H), lengths, W_hh, hprev, gates, dgx, dgh, d0)
            out["gru_dgh"] = dgh
        out |= {f"{cell}_h": hc, f"{cell}_gates": gates, f"{cell}_dgx": dgx, f"{cell}_dh0": d0}
    return out


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].numpy().tobytes() == b[name].numpy().tobytes(), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_kernel_same_bits_on_1_2_3_threads(kernels, dtype):
    torch.set_num_threads(1)
    one = every_kernel(kernels, dtype)
    for threads in (2, 3, 2):  # growing the pool, then fewer shares than workers
        torch.set_num_threads(threads)
        assert_bitwise_equal(every_kernel(kernels, dtype), one)


def book_step(threads: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and gradients of one training step of a small book network (dropout on) on `threads` threads."""
    torch.set_num_threads(threads)
    torch.manual_seed(3)  # the dropout mask's seed
    table = torch.randn(V, 16, generator=torch.Generator().manual_seed(1))
    model = BookClassifier(ModelConfig(units=H, dropout=0.2, embedding_dims=16, maxlen=T), table, seed=2)
    model.train()
    ids = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(4))
    logits = model(ids)
    assert logits.grad_fn.name() == "CompiledBookNetworkBackward"  # the compiled path ran
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.arange(B) % 2 * 1.0).backward()
    return logits.detach(), {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


def test_book_network_same_logits_and_gradients_on_1_and_2_threads(kernels):
    logits, grads = book_step(1)
    logits2, grads2 = book_step(2)
    assert logits.numpy().tobytes() == logits2.numpy().tobytes()
    assert len(grads) >= 4
    assert_bitwise_equal(grads, grads2)


def test_concurrent_calls_from_python_threads(kernels):
    """ctypes releases the GIL: calls from several Python threads overlap; each gets its own results."""
    torch.set_num_threads(1)
    expected = every_kernel(kernels)
    torch.set_num_threads(2)
    failures = []

    def call():
        for _ in range(5):
            got = every_kernel(kernels)
            failures.extend(name for name in got if not torch.equal(got[name], expected[name]))

    workers = [threading.Thread(target=call) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers)
    assert failures == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_pool_works_in_a_forked_child(kernels):
    """The child of a process whose pool has started has no workers: it starts its own (no hang) and gets the
    parent's values; the parent's pool still works after the fork."""
    torch.set_num_threads(2)
    expected = every_kernel(kernels)  # starts the parent's workers
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report, never return into pytest
        status = 1
        try:
            got = every_kernel(kernels)
            # compared in NumPy: torch's own OpenMP pool does not survive fork() (libgomp), the kernels' must
            status = 0 if all(got[n].numpy().tobytes() == expected[n].numpy().tobytes() for n in expected) else 3
        finally:
            os.write(write, bytes([status]))
            os._exit(status)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 120)
    message = os.read(read, 1) if ready else b""
    os.close(read)
    if not ready:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    assert message == b"\x00", "the forked child hung or got other values"
    assert_bitwise_equal(every_kernel(kernels), expected)


def test_interpreter_exits_with_the_pool_started():
    """At exit the workers are stopped and joined: the process ends promptly, with status 0."""
    code = ("import torch; from loopynet.models import fast_kernel; torch.set_num_threads(2); "
            "k = fast_kernel.kernels(); h = torch.empty(3, 32, 8); "
            "k.rnn_forward(torch.randn(3, 32, 8), torch.randn(8, 8), torch.randn(32, 8), h); "
            "print(h.isfinite().all().item())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "True"
