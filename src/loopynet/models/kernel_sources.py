"""The C sources of loopynet's kernels and how they are compiled: one definition for the run-time build
(models/fast_kernel.py) and the install-time build (setup.py, which loads this file by path: standard
library only here). Also where a library can come from (`installed_library`, `compiler_path`), which the
CLI asks before torch loads (`kernels_expected`).

Each source is compiled twice into one library, with -DLN_REAL_F32 (float, symbols *_f32) and
-DLN_REAL_F64 (double, *_f64). The run-time build targets the CPU it runs on (-march=native); an installed
wheel cannot, so it holds INSTALL_VARIANTS, chosen at run time by the CPU's features (`variant_for`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = tuple(HERE / name for name in ("kernel.c", "cells_kernel.c", "pool_kernel.c"))  # linked into one library
HEADERS = (HERE / "kernel_common.h",)  # included by both sources (found next to them)
# -fno-wrapv: setuptools puts Python's own CFLAGS first, which include -fwrapv (signed overflow wraps), and
# with it the installed library took 1.29x the CPU time per book-network training step of the same build
# without it (6.79 against 5.22 ms, x86-64-v4, one thread: loop and index arithmetic optimised less).
FLAGS = ("-O3", "-fno-wrapv", "-fPIC", "-std=gnu99", "-pthread")
JIT_FLAGS = ("-O3", "-march=native", "-fPIC", "-std=gnu99", "-pthread")
_V3 = ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave")
INSTALL_VARIANTS = {  # in order of preference: the last one the CPU runs is used
    # the compiler's default target (x86-64 with SSE2, armv8-a, ...): runs on every CPU of the architecture
    "baseline": {"flags": (), "machines": None, "cpu_features": ()},
    # x86-64-v3 (AVX, AVX2, BMI1/2, F16C, FMA, LZCNT, MOVBE, XSAVE: Intel Haswell 2013+, AMD Excavator 2015+),
    # the psABI's level 3 (_V3: /proc/cpuinfo names; LZCNT is "abm")
    "x86_64_v3": {"flags": ("-march=x86-64-v3",), "machines": ("x86_64", "amd64"),
                  "cpu_features": _V3},
    # x86-64-v4: v3 plus AVX-512 F/BW/CD/DQ/VL (Intel Skylake-SP 2017+, AMD Zen 4 2022+). The kernels' vectors
    # and register tiles follow the target (64-byte vectors here, 32 for v3, 16 for baseline); measured on an
    # AVX-512 CPU, one book-network training step takes 1.2x the CPU time built for v3 and 1.9x for baseline,
    # both faster than the pure-PyTorch path (benchmarks/bench_kernel_install.py)
    "x86_64_v4": {"flags": ("-march=x86-64-v4",), "machines": ("x86_64", "amd64"),
                  "cpu_features": _V3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")},
}
MANIFEST = "_kernels.json"  # written by setup.py next to the installed libraries


def sources_sha256(paths=SOURCES + HEADERS) -> str:
    """sha256 over the sources' and headers' names and bytes: whether an installed library was built from
    these sources (and which run-time build is cached for them)."""
    digest = hashlib.sha256()
    for path in sorted(map(Path, paths), key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def variant_for(available: list[str], cpu_features: set[str]) -> str | None:
    """The fastest of the `available` install variants whose CPU features are all in `cpu_features`."""
    usable = [name for name in INSTALL_VARIANTS
              if name in available and set(INSTALL_VARIANTS[name]["cpu_features"]) <= cpu_features]
    return usable[-1] if usable else None


def cpu_flags() -> str:
    """The CPU's feature line of /proc/cpuinfo ("flags : ..." or "Features : ..."), else platform.processor()."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line for line in lines if line.startswith(("flags", "Features"))), "")


def installed_library(folder: Path = HERE) -> tuple[Path, str] | None:
    """(path, variant) of the library setup.py built into `folder` for the current sources and the best
    variant this CPU runs (`variant_for`), or None: no manifest, other sources, or no variant."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest["sources_sha256"] != sources_sha256():
            return None
        variant = variant_for(list(manifest["variants"]), set(cpu_flags().split()))
        return None if variant is None else (folder / manifest["variants"][variant]["file"], variant)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def compiler_path() -> str | None:
    """The C compiler the run-time build uses: `$CC`, else the first of cc, gcc, clang on PATH; None: none."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        found = name and shutil.which(name)
        if found:
            return found
    return None


def kernels_expected(device: str = "auto", environ: dict | None = None) -> bool:
    """Whether a run on `device` ("auto", "cpu" or "cuda") will use the compiled kernels, without importing
    torch: not `LOOPYNET_KERNEL=torch`, not "cuda", and an installed library for this CPU or a C compiler
    to build one ("auto" counts as the CPU: on CUDA machines the answer only sets OMP_WAIT_POLICY, which
    GPU runs hardly use)."""
    environ = os.environ if environ is None else environ
    if environ.get("LOOPYNET_KERNEL", "").strip().lower() == "torch" or device == "cuda":
        return False
    return installed_library() is not None or compiler_path() is not None
