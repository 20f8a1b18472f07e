"""The C sources of loopynet's kernels and how they are compiled: one definition for the run-time build
(models/fast_kernel.py) and the install-time build (setup.py, which loads this file by path: standard
library only here).

Each source is compiled twice into one library, with -DLN_REAL_F32 (float, symbols *_f32) and
-DLN_REAL_F64 (double, *_f64). The run-time build targets the CPU it runs on (-march=native); an installed
wheel cannot, so it holds INSTALL_VARIANTS, chosen at run time by the CPU's features (`variant_for`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = tuple(HERE / name for name in ("kernel.c", "cells_kernel.c"))  # linked into one library
FLAGS = ("-O3", "-fPIC", "-std=gnu99", "-pthread")
JIT_FLAGS = ("-O3", "-march=native", "-fPIC", "-std=gnu99", "-pthread")
_V3 = ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave")
INSTALL_VARIANTS = {  # in order of preference: the last one the CPU runs is used
    # the compiler's default target (x86-64 with SSE2, armv8-a, ...): runs on every CPU of the architecture
    "baseline": {"flags": (), "machines": None, "cpu_features": ()},
    # x86-64-v3 (AVX, AVX2, BMI1/2, F16C, FMA, LZCNT, MOVBE, XSAVE: Intel Haswell 2013+, AMD Excavator 2015+),
    # the psABI's level 3 (_V3: /proc/cpuinfo names; LZCNT is "abm")
    "x86_64_v3": {"flags": ("-march=x86-64-v3",), "machines": ("x86_64", "amd64"),
                  "cpu_features": _V3},
    # x86-64-v4: v3 plus AVX-512 F/BW/CD/DQ/VL (Intel Skylake-SP 2017+, AMD Zen 4 2022+). kernel.c's vectors
    # are 64 bytes (one AVX-512 register); measured here, its recurrence is ~20x slower built for v3
    # (each vector two AVX2 registers: its register tiles spill) and as fast as -march=native for v4
    "x86_64_v4": {"flags": ("-march=x86-64-v4",), "machines": ("x86_64", "amd64"),
                  "cpu_features": _V3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")},
}
MANIFEST = "_kernels.json"  # written by setup.py next to the installed libraries


def sources_sha256(paths=SOURCES) -> str:
    """sha256 over the sources' names and bytes: whether an installed library was built from these sources."""
    digest = hashlib.sha256()
    for path in sorted(map(Path, paths), key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def variant_for(available: list[str], cpu_features: set[str]) -> str | None:
    """The fastest of the `available` install variants whose CPU features are all in `cpu_features`."""
    usable = [name for name in INSTALL_VARIANTS
              if name in available and set(INSTALL_VARIANTS[name]["cpu_features"]) <= cpu_features]
    return usable[-1] if usable else None
