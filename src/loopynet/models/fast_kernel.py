"""Build, cache and load loopynet's compiled kernels (models/kernel.c: SimpleRNN, projections, head;
models/cells_kernel.c: fused LSTM/GRU steps; models/pool_kernel.c: the dropout + max head) and call them on
torch tensors.

Where `pip install` built them into the package (setup.py: `loopynet/models/_kernels_<variant>*.so` and
`_kernels.json`, from the same sources and flags but a portable target, see models/kernel_sources.py),
that library is loaded: no compiler is needed at run time. Otherwise (a source install without a
compiler at install time, or sources edited since: the manifest's hash differs) the C sources, which
ship in the package, are compiled into one library at first use with the system C compiler (`$CC`, else
`cc`, `gcc` or `clang`) into `$LOOPYNET_HOME/cache/kernels/<hash>.so`, where the hash covers the
sources, the flags, the compiler's version and the CPU (the build uses -march=native). The build writes
to a temporary folder and publishes with `os.replace`, so two processes racing on a cold cache both
succeed and one of two identical files wins. Loading is through ctypes; no torch headers are needed.

`kernels()` returns None (and callers use their pure-PyTorch path) when `LOOPYNET_KERNEL=torch` is set,
or when there is no installed library, no compiler is found or the build or load fails; the latter warns
once, saying why. `LOOPYNET_KERNEL=jit` skips the installed library (to compare the two). The loaded
library's `Kernels.kind` says which ran.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from loopynet.home import cache_dir
from loopynet.models import kernel_sources
from loopynet.models.kernel_sources import installed_library

ENV = "LOOPYNET_KERNEL"  # "torch": never use the compiled kernels; "jit": never the installed library
SOURCES = kernel_sources.SOURCES  # kernel.c, cells_kernel.c and pool_kernel.c: one library
FLAGS = kernel_sources.JIT_FLAGS
ROWS = 8  # kernel.c's ROWS: rows per register tile, so the smallest useful share of a thread
_SUFFIX = {torch.float32: "_f32", torch.float64: "_f64"}

_loaded: Kernels | None = None
_failure: str | None = None


class KernelBuildError(RuntimeError):
    """The C kernels could not be compiled or loaded (the message says why)."""


def _ptr(x: torch.Tensor | None) -> int | None:
    return None if x is None else x.data_ptr()


class Kernels:
    """Typed calls into the compiled library. Every tensor argument must be contiguous, on the CPU and
    float32 or float64 (uint8 for masks); the caller allocates outputs. Shapes as in kernel.c:
    T time, B batch, H units; (T, B, H) arrays are time-major.
    """

    def __init__(self, lib: ctypes.CDLL, path: Path, kind: str = "jit"):
        self.path, self.kind = path, kind  # kind: "installed <variant>" or "jit"
        self._lib = lib
        P, I, L = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
        for suffix, real in (("_f32", ctypes.c_float), ("_f64", ctypes.c_double)):
            self._sig("rnn_forward" + suffix, [P, P, P, P, P, P, P, real, real, P, I, I, I, I], I)
            self._sig("rnn_backward" + suffix, [P, P, P, P, real, P, P, P, P, P, P, P, I, I, I, I], I)
            self._sig("project_rows" + suffix, [P, P, L, I, I, P, P, P, I, I], I)
            self._sig("accumulate_xt_d" + suffix, [P, P, L, I, I, P, I, P, I], I)
            self._sig("scatter_sum_rows" + suffix, [P, P, L, I, P, I, I], None)
            self._sig("head_forward" + suffix, [P, P, P, real, real, P, I, I, I, I], I)
            self._sig("head_backward" + suffix, [P, P, P, P, real, P, P, I, I, I, I], I)
            self._sig("lstm_forward" + suffix, [P, P, L, P, P, P, P, P, P, L, P, P, P, I, I, I, I], I)
            self._sig("lstm_backward" + suffix, [P, L, P, P, P, P, P, P, P, L, P, P, I, I, I, I], I)
            self._sig("gru_forward" + suffix, [P, P, L, P, P, P, P, P, L, P, P, I, I, I, I], I)
            self._sig("gru_backward" + suffix, [P, L, P, P, P, P, P, L, P, P, I, I, I, I], I)
            self._sig("max_pool_forward" + suffix, [P, L, L, P, real, P, P, P, P, I, I, I, I], None)
            self._sig("max_pool_backward" + suffix, [P, P, P, P, L, L, I, I], None)
        self._sig("dropout_mask", [P, L, ctypes.c_uint64, ctypes.c_uint32, I], None)
        self._sig("unique_ids", [P, L, L, P, P, P], L)

    def _sig(self, name: str, argtypes: list, restype) -> None:
        fn = getattr(self._lib, name)
        fn.argtypes, fn.restype = argtypes, restype

    def _fn(self, name: str, like: torch.Tensor):
        return getattr(self._lib, name + _SUFFIX[like.dtype])

    @staticmethod
    def supports(x: torch.Tensor) -> bool:
        """True for CPU float32/float64 tensors, the dtypes kernel.c is built for."""
        return x.device.type == "cpu" and x.dtype in _SUFFIX

    @staticmethod
    def _threads(rows: int) -> int:
        """Threads for work split by rows: torch's thread count, at most one per ROWS rows."""
        return max(1, min(torch.get_num_threads(), -(-rows // ROWS)))

    @staticmethod
    def _threads_for(elements: int) -> int:
        """Threads for an elementwise pass over `elements` values: torch's thread count, at most one per
        2**16 values (below that, starting a thread costs more than it saves)."""
        return max(1, min(torch.get_num_threads(), elements >> 16))

    def rnn_forward(self, a: torch.Tensor, W: torch.Tensor, h0: torch.Tensor, h: torch.Tensor,
                    where: torch.Tensor | None = None, head: tuple | None = None) -> None:
        """h (T, B, H) <- the recurrence `h[t] = tanh(a[t] + h[t-1] @ W)` from h0 (B, H); a is (T, B, H), or
        with `where` (T*B,) int64 a (U, H) of which row where[t*B + b] is a[t, b] (the token projection).

        `head` = (mask (T, B, H) uint8 or None, w (T*H, 1), scale, bias, z (B,)): z also receives the book head's
        logits, the values `head_forward` would write from h, summed in the same pass.

        Raises:
            MemoryError: the kernel could not allocate its small work buffers.
        """
        T, B, H = h.shape
        mask, w, scale, bias, z = head if head is not None else (None, None, 1.0, 0.0, None)
        if self._fn("rnn_forward", a)(_ptr(a), _ptr(where), _ptr(W), _ptr(h0), _ptr(h), _ptr(mask), _ptr(w), scale,
                                      bias, _ptr(z), T, B, H, self._threads(B)):
            raise MemoryError("loopynet kernel rnn_forward: out of memory")

    def rnn_backward(self, dh: torch.Tensor | None, h: torch.Tensor, W: torch.Tensor, da: torch.Tensor,
                     dh0: torch.Tensor, head: tuple | None = None, dW: torch.Tensor | None = None,
                     h0: torch.Tensor | None = None, dw: torch.Tensor | None = None) -> None:
        """da (T, B, H), dh0 (B, H) <- BPTT through the recurrence from dh (T, B, H) and h (T, B, H).

        With dh None, `head` = (dz (B,), mask (T, B, H) uint8 or None, w (T*H, 1), scale): dh is the gradient
        `head_backward` would write for the book's Dropout -> Flatten -> Dense(1) head, computed on the fly; then
        `dw` (T*H, 1), unless None, receives the head's kernel gradient (head_backward's dw), summed in the same
        pass. `dW` (H, H), unless None, receives dW_hh = sum_t h[t-1]^T da[t] with h[-1] = h0 (B, H) (None:
        zeros), summed in the same pass while da[t] is in cache. Both sums over the batch are taken per block of
        ROWS rows and then over the blocks in order, so they are the same for any thread count.

        Raises:
            MemoryError: the kernel could not allocate its work buffers.
        """
        T, B, H = h.shape
        dz, mask, w, scale = head if dh is None else (None, None, None, 1.0)
        if self._fn("rnn_backward", h)(_ptr(dh), _ptr(dz), _ptr(mask), _ptr(w), scale, _ptr(h), _ptr(h0), _ptr(W),
                                       _ptr(da), _ptr(dh0), _ptr(dW), _ptr(dw), T, B, H, self._threads(B)):
            raise MemoryError("loopynet kernel rnn_backward: out of memory")

    def project_rows(self, x: torch.Tensor, idx: torch.Tensor | None, W: torch.Tensor, bias: torch.Tensor,
                     out: torch.Tensor) -> None:
        """out (n, H) <- bias (H,) + X @ W (n_in, H), X row i = x[idx[i]] (idx int64 (n,)) or x[i] (idx None).

        x is (rows, n_in). Raises:
            MemoryError: the kernel could not allocate its padded copy of W.
        """
        n, H = out.shape
        if self._fn("project_rows", x)(_ptr(x), _ptr(idx), x.shape[1], n, x.shape[1], _ptr(W), _ptr(bias),
                                       _ptr(out), H, self._threads(n)):
            raise MemoryError("loopynet kernel project_rows: out of memory")

    def accumulate_xt_d(self, x: torch.Tensor, idx: torch.Tensor | None, d: torch.Tensor, out: torch.Tensor) -> None:
        """out (n_in, H) += sum_i X_i^T d_i over the n rows of d (n, H); X row i = x[idx[i]] or x[i], x (rows, n_in).

        Raises:
            MemoryError: the kernel could not allocate its padded copy of out.
        """
        n, H = d.shape
        n_in = x.shape[1]
        if self._fn("accumulate_xt_d", x)(_ptr(x), _ptr(idx), n_in, n, n_in, _ptr(d), H, _ptr(out),
                                          self._threads(n_in)):
            raise MemoryError("loopynet kernel accumulate_xt_d: out of memory")

    def scatter_sum_rows(self, d: torch.Tensor, where: torch.Tensor, out: torch.Tensor) -> None:
        """out (U, H) <- the rows of d (n, H) summed by target row where (n,) int64 (each in [0, U), unchecked):
        out[u] = sum of d[i] over i with where[i] == u, i ascending (zero where none). out need not be initialised."""
        n, H = d.shape
        U = out.shape[0]
        self._fn("scatter_sum_rows", d)(_ptr(d), _ptr(where), n, H, _ptr(out), U, min(U, self._threads_for(d.numel())))

    def unique_ids(self, ids: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (U,), where (n,)) for contiguous int64 ids (n,) in [0, size): the distinct ids in order of
        first appearance, and each position's index into tokens (so tokens[where] == ids).

        Raises:
            IndexError: an id is negative or >= size.
            ValueError: 2**31 ids or more (the slot array holds int32).
        """
        n = ids.numel()
        if n >= 2**31:
            raise ValueError(f"unique_ids handles fewer than 2**31 ids, got {n}")
        tokens, where = torch.empty(n, dtype=torch.int64), torch.empty(n, dtype=torch.int64)
        slot = torch.empty(size, dtype=torch.int32)
        U = self._lib.unique_ids(_ptr(ids), n, size, _ptr(slot), _ptr(tokens), _ptr(where))
        if U < 0:
            raise IndexError(f"token id out of range [0, {size}): min {int(ids.min())}, max {int(ids.max())}")
        return tokens[:U], where

    def head_forward(self, h: torch.Tensor, mask: torch.Tensor | None, w: torch.Tensor, scale: float,
                     bias: float, z: torch.Tensor) -> None:
        """z (B,) <- bias + scale * sum over t, j of mask * h (T, B, H) * w (T, H); mask None: all kept.

        Raises:
            MemoryError: the kernel could not allocate its (B, H) work buffer.
        """
        T, B, H = h.shape
        if self._fn("head_forward", h)(_ptr(h), _ptr(mask), _ptr(w), scale, bias, _ptr(z), T, B, H,
                                       min(B, self._threads_for(h.numel()))):
            raise MemoryError("loopynet kernel head_forward: out of memory")

    def head_backward(self, dz: torch.Tensor, h: torch.Tensor, mask: torch.Tensor | None, w: torch.Tensor,
                      scale: float, dh: torch.Tensor | None, dw: torch.Tensor) -> None:
        """dh (T, B, H) (unless None) and dw (T, H) <- the head's gradients from dz (B,).

        Raises:
            MemoryError: the kernel could not allocate its small work buffer.
        """
        T, B, H = h.shape
        if self._fn("head_backward", h)(_ptr(dz), _ptr(h), _ptr(mask), _ptr(w), scale, _ptr(dh), _ptr(dw), T, B, H,
                                        min(T, self._threads_for(h.numel()))):
            raise MemoryError("loopynet kernel head_backward: out of memory")

    def lstm_forward(self, gx: torch.Tensor, where: torch.Tensor | None, lengths: torch.Tensor | None,
                     W_hh: torch.Tensor, b_hh: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, h: torch.Tensor,
                     hprev: torch.Tensor, c: torch.Tensor, gates: torch.Tensor) -> None:
        """One LSTM direction (torch.nn.LSTM's equations; cells_kernel.c): h (T, B, H) view with unit last stride,
        hprev, c (T, B, H) and gates (T, B, 4H) (i, f, g, o) <- the recurrence over gx = x @ W_ih^T + b_ih,
        W_hh (4H, H), b_hh (4H,), h0, c0 (B, H).

        gx is (n, 4H) with unit last stride: row t*B + b is gx[where[t*B + b]] (where int64 (T*B,)) or gx[t*B + b].
        lengths (B,) int64, or None: the direction runs each row reversed within its length (padding after).

        Raises:
            MemoryError: the kernel could not allocate its small work buffers.
        """
        T, B, H = c.shape
        if self._fn("lstm_forward", gx)(_ptr(gx), _ptr(where), gx.stride(0), _ptr(lengths), _ptr(W_hh), _ptr(b_hh),
                                        _ptr(h0), _ptr(c0), _ptr(h), h.stride(1), _ptr(hprev), _ptr(c), _ptr(gates),
                                        T, B, H, self._threads(B)):
            raise MemoryError("loopynet kernel lstm_forward: out of memory")

    def lstm_backward(self, dh: torch.Tensor, dcT: torch.Tensor, lengths: torch.Tensor | None, W_hh: torch.Tensor,
                      c0: torch.Tensor, c: torch.Tensor, gates: torch.Tensor, dgx: torch.Tensor, dh0: torch.Tensor,
                      dc0: torch.Tensor) -> None:
        """BPTT of `lstm_forward`: dgx (T*B, 4H) view with unit last stride, dh0, dc0 (B, H) <- dh (T, B, H) view
        with unit last stride (dloss/dh from outside the recurrence), dcT (B, H) (dloss/dc after the last step).

        Raises:
            MemoryError: the kernel could not allocate its small work buffers.
        """
        T, B, H = c.shape
        if self._fn("lstm_backward", c)(_ptr(dh), dh.stride(1), _ptr(dcT), _ptr(lengths), _ptr(W_hh), _ptr(c0),
                                        _ptr(c), _ptr(gates), _ptr(dgx), dgx.stride(0), _ptr(dh0), _ptr(dc0), T, B, H,
                                        self._threads(B)):
            raise MemoryError("loopynet kernel lstm_backward: out of memory")

    def gru_forward(self, gx: torch.Tensor, where: torch.Tensor | None, lengths: torch.Tensor | None,
                    W_hh: torch.Tensor, b_hh: torch.Tensor, h0: torch.Tensor, h: torch.Tensor, hprev: torch.Tensor,
                    gates: torch.Tensor) -> None:
        """One GRU direction (torch.nn.GRU's equations): h (T, B, H) view with unit last stride, hprev (T, B, H)
        and gates (T, B, 4H) (r, z, n, W_hn h_prev + b_hn) <- the recurrence over gx (rows as in `lstm_forward`,
        3H wide), W_hh (3H, H), b_hh (3H,), h0 (B, H).

        Raises:
            MemoryError: the kernel could not allocate its small work buffers.
        """
        T, B, H = hprev.shape
        if self._fn("gru_forward", gx)(_ptr(gx), _ptr(where), gx.stride(0), _ptr(lengths), _ptr(W_hh), _ptr(b_hh),
                                       _ptr(h0), _ptr(h), h.stride(1), _ptr(hprev), _ptr(gates), T, B, H,
                                       self._threads(B)):
            raise MemoryError("loopynet kernel gru_forward: out of memory")

    def gru_backward(self, dh: torch.Tensor, lengths: torch.Tensor | None, W_hh: torch.Tensor, hprev: torch.Tensor,
                     gates: torch.Tensor, dgx: torch.Tensor, dgh: torch.Tensor, dh0: torch.Tensor) -> None:
        """BPTT of `gru_forward`: dgx (T*B, 3H) view with unit last stride (gradient of gx), dgh (T*B, 3H)
        (gradient of h_prev @ W_hh^T + b_hh) and dh0 (B, H) <- dh (T, B, H) view with unit last stride.

        Raises:
            MemoryError: the kernel could not allocate its small work buffers.
        """
        T, B, H = hprev.shape
        if self._fn("gru_backward", hprev)(_ptr(dh), dh.stride(1), _ptr(lengths), _ptr(W_hh), _ptr(hprev),
                                           _ptr(gates), _ptr(dgx), dgx.stride(0), _ptr(dgh), _ptr(dh0), T, B, H,
                                           self._threads(B)):
            raise MemoryError("loopynet kernel gru_backward: out of memory")

    def max_pool_forward(self, out: torch.Tensor, mask: torch.Tensor | None, scale: float, lengths: torch.Tensor,
                         pooled: torch.Tensor, arg: torch.Tensor, gain: torch.Tensor) -> None:
        """pooled (B, D) <- for each row b and feature f the maximum over t < lengths[b] of out[t, b, f] times
        (mask[t, b, f] * scale, or 1 with mask None); arg (B, D) int32 the first t reaching it, gain (B, D) the
        factor there (pool_kernel.c). out (T, B, D) may have any time and batch strides, features contiguous;
        mask (T, B, D) uint8 contiguous; lengths (B,) int64 contiguous. A row without steps pools to 0."""
        T, B, D = out.shape
        self._fn("max_pool_forward", out)(_ptr(out), out.stride(0), out.stride(1), _ptr(mask), scale, _ptr(lengths),
                                          _ptr(pooled), _ptr(arg), _ptr(gain), T, B, D,
                                          min(B, self._threads_for(out.numel())))

    def max_pool_backward(self, d_pooled: torch.Tensor, arg: torch.Tensor, gain: torch.Tensor,
                          d_out: torch.Tensor) -> None:
        """d_out (T, B, D) (any time and batch strides, features contiguous; zero on entry) <- d_pooled (B, D) *
        gain at each row's and feature's arg: the gradient of `max_pool_forward`."""
        T, B, D = d_out.shape
        self._fn("max_pool_backward", d_out)(_ptr(d_pooled), _ptr(arg), _ptr(gain), _ptr(d_out), d_out.stride(0),
                                             d_out.stride(1), B, D)

    def dropout_mask(self, mask: torch.Tensor, seed: int, keep: float) -> None:
        """mask (uint8, any shape, < 2**32 elements) <- 1 with probability `keep`, else 0, from a 64-bit seed.

        Raises:
            ValueError: keep outside (0, 1], or the mask has 2**32 elements or more.
        """
        if not 0.0 < keep <= 1.0 or mask.numel() >= 2**32:
            raise ValueError(f"dropout_mask needs 0 < keep <= 1 and < 2**32 elements; got keep={keep}, "
                             f"{mask.numel()} elements")
        threshold = min(round(keep * 2**32), 2**32 - 1)
        self._lib.dropout_mask(_ptr(mask), mask.numel(), seed, threshold, self._threads_for(mask.numel()))


class BufferPool:
    """Reusable CPU tensors for the large per-step arrays of the compiled path ((T, B, H) states, their
    gradients, dropout masks).

    Freshly allocated multi-megabyte tensors cost page faults every step (the C allocator returns the
    memory to the OS and faults it in again: ~300 minor faults, ~1 ms of a ~6 ms step on the book's
    configuration). A pooled buffer is a NumPy array (on a cache-line boundary) wrapped by
    `torch.from_numpy`, whose storage holds a reference to the array until the last tensor viewing it
    (autograd's saved tensors included) is gone; so a buffer is handed out again only when nothing uses it. At most `per_shape` buffers per
    (shape, dtype) and `shapes` shapes are kept (least recently used shapes are dropped); beyond that,
    `empty` returns a plain new tensor. Safe to share between threads.
    """

    def __init__(self, per_shape: int = 4, shapes: int = 16):
        self.per_shape, self.shapes = per_shape, shapes
        self._free: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised contiguous CPU tensor of `shape` and `dtype` (a NumPy-representable dtype)."""
        with self._lock:
            return self._take(tuple(shape), dtype)

    def _take(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        key = (shape, dtype)
        arrays = self._free.setdefault(key, [])
        self._free.move_to_end(key)
        if len(self._free) > self.shapes:
            self._free.popitem(last=False)
        for array in arrays:
            if sys.getrefcount(array) == _UNUSED:  # no tensor holds it
                return torch.from_numpy(array)
        if len(arrays) >= self.per_shape:
            return torch.empty(shape, dtype=dtype)
        arrays.append(_aligned_empty(shape, torch.empty(0, dtype=dtype).numpy().dtype))
        return torch.from_numpy(arrays[-1])


def _aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised array starting on a cache line (64 bytes; NumPy's allocator gives 16). The kernels' threads
    write whole blocks of batch rows of these arrays every time step; with 16-byte alignment the line across the
    boundary of two threads' rows was written by both (false sharing)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + 64, dtype=np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def _unused_refcount() -> int:
    """sys.getrefcount of an array referenced only by a list and a loop variable, as in BufferPool._take
    (measured, not assumed: the count differs between Python versions)."""
    for array in [np.empty(0)]:
        return sys.getrefcount(array)


_UNUSED = _unused_refcount()
buffers = BufferPool()


def kernels() -> Kernels | None:
    """The compiled kernels, built on first use; None when `LOOPYNET_KERNEL=torch` or they are unavailable.

    A failed build or load warns once (RuntimeWarning, with the reason) and is not retried in this process.
    The kernels use up to `torch.get_num_threads()` threads.
    """
    global _loaded, _failure
    if os.environ.get(ENV, "").strip().lower() == "torch":
        return None
    if _loaded is None and _failure is None:
        try:
            _loaded = load()
        except (KernelBuildError, OSError, AttributeError) as error:  # AttributeError: a symbol is missing
            _failure = str(error)
            warnings.warn(f"loopynet: compiled kernels unavailable, using the slower pure-PyTorch path "
                          f"({_failure})", RuntimeWarning, stacklevel=2)
    return _loaded


def load() -> Kernels:
    """The installed library when there is one for these sources and this CPU (and `LOOPYNET_KERNEL` is not
    "jit"); else the cached run-time build for this source, compiler and CPU, built first when missing.

    Raises:
        KernelBuildError: no C compiler, or the build failed (the compiler's output is in the message).
        OSError: the built library could not be loaded.
    """
    installed = None if os.environ.get(ENV, "").strip().lower() == "jit" else installed_library()
    if installed is not None:
        path, variant = installed
        try:
            return Kernels(ctypes.CDLL(str(path)), path, f"installed {variant}")
        except OSError as error:
            warnings.warn(f"loopynet: installed kernels {path} do not load ({error}); building them", RuntimeWarning,
                          stacklevel=2)
    compiler = find_compiler()
    path = cache_dir() / "kernels" / f"{build_key(compiler, FLAGS)}.so"
    if not path.exists():
        build(compiler, FLAGS, path)
    return Kernels(ctypes.CDLL(str(path)), path)


def find_compiler() -> str:
    """Path of the C compiler: `$CC`, else the first of cc, gcc, clang on PATH.

    Raises:
        KernelBuildError: none found.
    """
    found = kernel_sources.compiler_path()
    if found is None:
        raise KernelBuildError("no C compiler found (install gcc or clang, or set CC)")
    return found


def build_key(compiler: str, flags: tuple[str, ...]) -> str:
    """Hex digest naming the cached library: sources, flags, compiler version, machine and CPU flags."""
    digest = hashlib.sha256(kernel_sources.sources_sha256().encode())
    for part in (" ".join(flags), _compiler_version(compiler), platform.machine(), kernel_sources.cpu_flags()):
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()[:24]


def compiler_description() -> str | None:
    """'path: first line of --version' of the C compiler `load` uses, or None when there is none."""
    try:
        compiler = find_compiler()
        return f"{compiler}: {_compiler_version(compiler).splitlines()[1]}"
    except (KernelBuildError, IndexError):
        return None


def _compiler_version(compiler: str) -> str:
    try:
        run = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        raise KernelBuildError(f"C compiler {compiler} does not run: {error}") from error
    return compiler + "\n" + run.stdout


def build(compiler: str, flags: tuple[str, ...], path: Path) -> None:
    """Compile every source in SOURCES (float and double passes) and link them into `path`, atomically.

    Raises:
        KernelBuildError: a compiler step failed or timed out (its output is in the message).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".build-") as tmp:
        objects = []
        for source in SOURCES:
            for real in ("F32", "F64"):
                objects.append(str(Path(tmp) / f"{source.stem}_{real}.o"))
                _compile([compiler, *flags, f"-DLN_REAL_{real}", "-c", str(source), "-o", objects[-1]])
        library = str(Path(tmp) / "kernel.so")
        _compile([compiler, *flags, "-shared", *objects, "-o", library, "-lm", "-lpthread"])
        os.replace(library, path)


def _compile(command: list[str]) -> None:
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        raise KernelBuildError(f"{' '.join(command)}: {error}") from error
    if run.returncode:
        raise KernelBuildError(f"{' '.join(command)} exited {run.returncode}: {run.stderr.strip()[-2000:]}")
