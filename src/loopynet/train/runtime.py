"""What trained numbers depend on besides the settings: torch's thread count and the kernel path.

The compiled kernels (loopynet.models.fast_kernel) and the pure-PyTorch path sum in different orders,
and so do different thread counts: the same seed gives weights that differ in the last bits, and a
small run's val_accuracy moved 0.5475 / 0.5025 / 0.5525 between them. Model folders and checkpoints
record this; resuming or re-evaluating under another runtime warns.
"""

from __future__ import annotations

import warnings

import torch

from loopynet.models import fast_kernel

COMPARED = ("threads", "kernel")  # the entries whose change can move the numbers


def runtime_info() -> dict:
    """{"threads": torch's intra-op thread count, "kernel": "compiled" or "torch", "kernel_build": the
    compiled library's file name, compiler and flags (None on the torch path), "torch": its version}."""
    kernels = fast_kernel.kernels()
    build = None
    if kernels is not None:
        build = {"library": kernels.path.name, "compiler": fast_kernel.compiler_description(),
                 "flags": " ".join(fast_kernel.FLAGS)}
    return {"threads": torch.get_num_threads(), "kernel": "torch" if kernels is None else "compiled",
            "kernel_build": build, "torch": str(torch.__version__)}


def runtime_differences(recorded: dict | None, now: dict | None = None) -> list[str]:
    """'threads: 2 then, 1 now'-style lines for each COMPARED entry that differs (none when nothing was
    recorded, as in folders written before loopynet recorded it)."""
    if not recorded:
        return []
    now = now or runtime_info()
    return [f"{key}: {recorded.get(key)!r} then, {now.get(key)!r} now" for key in COMPARED
            if key in recorded and recorded.get(key) != now.get(key)]


def warn_runtime(recorded: dict | None, what: str) -> list[str]:
    """Warn (RuntimeWarning) when `recorded` differs from the current runtime; returns the differences.
    `what` says what is being done, e.g. "resuming", "evaluating"."""
    differences = runtime_differences(recorded)
    if differences:
        warnings.warn(f"loopynet: {what} under another runtime than training ({'; '.join(differences)}): results "
                      "may differ in the last digits from the recorded ones (use --threads and LOOPYNET_KERNEL "
                      "to match)", RuntimeWarning, stacklevel=3)
    return differences
