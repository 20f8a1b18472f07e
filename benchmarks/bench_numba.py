"""numba against loopynet's C kernel for the part of the book's network that needs compiled code: the
SimpleRNN recurrence, forward and BPTT (h[t] = tanh(a[t] + h[t-1] @ W); da[t] = (dh[t] + dh_next) *
(1 - h[t]^2), dh_next = da[t] @ W^T), float32, the benchmark's shapes (T 400, B 32, H 50 and 100).

    pip install numba                       # not a loopynet dependency: measured, not adopted
    python benchmarks/bench_numba.py        # one thread, thread CPU time, 5 interleaved repeats

Issue 17 part 7 asked whether numba (a JIT that ships as a wheel: no compiler at run time) could replace
the C kernels; the wheel now carries prebuilt kernels for three x86-64 targets, so the question is only
speed. The numba versions are the plain loops with fastmath (the inner loop over units is an axpy over
contiguous rows, which LLVM vectorises), compiled once before timing; both run on one thread and are checked equal to within float32 rounding. Prints ms per
forward+backward and the ratio numba / C.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np
import torch

from loopynet.models import fast_kernel


@numba.njit(cache=False, fastmath=True)
def rnn_forward(a, W, h):
    T, B, H = a.shape
    acc = np.empty(H, dtype=a.dtype)
    for t in range(T):
        for b in range(B):
            acc[:] = a[t, b]
            if t:
                for k in range(H):
                    x = h[t - 1, b, k]
                    for j in range(H):
                        acc[j] += x * W[k, j]
            for j in range(H):
                h[t, b, j] = np.tanh(acc[j])


@numba.njit(cache=False, fastmath=True)
def rnn_backward(dh, h, WT, da):
    T, B, H = h.shape
    dn = np.zeros((B, H), dtype=h.dtype)
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for j in range(H):
                da[t, b, j] = (dh[t, b, j] + dn[b, j]) * (1 - h[t, b, j] * h[t, b, j])
            dn[b, :] = 0
            for k in range(H):
                x = da[t, b, k]
                for j in range(H):
                    dn[b, j] += x * WT[k, j]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    kernels = fast_kernel.kernels()
    print(f"numba {numba.__version__}; C kernels: {kernels.kind}; one thread, thread CPU time")
    for H in args.units:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((400, 32, H), dtype=np.float32)
        W = (rng.standard_normal((H, H), dtype=np.float32) / np.sqrt(H)).astype(np.float32)
        dh = rng.standard_normal((400, 32, H), dtype=np.float32) * np.float32(1e-3)
        h_n, da_n = np.empty_like(a), np.empty_like(a)
        h_c, da_c, dh0 = torch.empty(400, 32, H), torch.empty(400, 32, H), torch.empty(32, H)
        at, Wt, dht, h0 = torch.from_numpy(a), torch.from_numpy(W), torch.from_numpy(dh), torch.zeros(32, H)

        WT = np.ascontiguousarray(W.T)

        def numba_step():
            rnn_forward(a, W, h_n)
            rnn_backward(dh, h_n, WT, da_n)

        def c_step():
            kernels.rnn_forward(at, Wt, h0, h_c)
            kernels.rnn_backward(dht, h_c, Wt, da_c, dh0)

        numba_step(), c_step()  # compiles numba's functions
        np.testing.assert_allclose(h_n, h_c.numpy(), atol=1e-5)
        np.testing.assert_allclose(da_n, da_c.numpy(), atol=1e-5, rtol=1e-4)
        times = {"numba": [], "C": []}
        for _ in range(args.repeats):
            for name, fn in (("numba", numba_step), ("C", c_step)):
                start = time.thread_time()
                for _ in range(5):
                    fn()
                times[name].append(1e3 * (time.thread_time() - start) / 5)
        numba_ms, c_ms = statistics.median(times["numba"]), statistics.median(times["C"])
        print(f"H={H}: recurrence forward + BPTT, ms: numba {numba_ms:.2f}, C {c_ms:.2f}; numba / C {numba_ms / c_ms:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
