"""Which compiled library fast_kernel loads: the installed one only when it was built from the current
sources, in the best variant the CPU runs; the install-time build covers every C source."""

from __future__ import annotations

import json
from pathlib import Path

from loopynet.models import kernel_sources

V3 = set(kernel_sources.INSTALL_VARIANTS["x86_64_v3"]["cpu_features"])
V4 = set(kernel_sources.INSTALL_VARIANTS["x86_64_v4"]["cpu_features"])


def test_every_c_source_of_the_package_is_built():
    assert sorted(p.name for p in kernel_sources.HERE.glob("*.c")) == sorted(s.name for s in kernel_sources.SOURCES)


def test_every_header_counts_in_the_sources_hash():
    """A header edit must invalidate installed libraries and JIT caches like a source edit."""
    assert sorted(p.name for p in kernel_sources.HERE.glob("*.h")) == sorted(h.name for h in kernel_sources.HEADERS)
    assert kernel_sources.sources_sha256() == kernel_sources.sources_sha256(kernel_sources.SOURCES +
                                                                            kernel_sources.HEADERS)
    assert kernel_sources.sources_sha256() != kernel_sources.sources_sha256(kernel_sources.SOURCES)


def test_variant_is_the_best_the_cpu_runs():
    every = ["baseline", "x86_64_v3", "x86_64_v4"]
    assert kernel_sources.variant_for(every, {"sse2"}) == "baseline"
    assert kernel_sources.variant_for(every, V3) == "x86_64_v3"
    assert kernel_sources.variant_for(every, V4) == "x86_64_v4"
    assert kernel_sources.variant_for(["baseline", "x86_64_v3"], V4) == "x86_64_v3"  # v4 not built
    assert kernel_sources.variant_for(["x86_64_v4"], V3) is None


def _manifest(folder: Path, sha: str) -> None:
    variants = {v: {"file": f"_kernels_{v}.so", "flags": []} for v in ("baseline", "x86_64_v3")}
    (folder / kernel_sources.MANIFEST).write_text(json.dumps({"sources_sha256": sha, "variants": variants}))


def test_installed_library_only_for_the_current_sources(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel_sources, "cpu_flags", lambda: "flags : " + " ".join(sorted(V3)))
    assert kernel_sources.installed_library(tmp_path) is None  # no manifest: a source install without the build
    _manifest(tmp_path, kernel_sources.sources_sha256())
    assert kernel_sources.installed_library(tmp_path) == (tmp_path / "_kernels_x86_64_v3.so", "x86_64_v3")
    monkeypatch.setattr(kernel_sources, "cpu_flags", lambda: "flags : sse2")
    assert kernel_sources.installed_library(tmp_path) == (tmp_path / "_kernels_baseline.so", "baseline")
    _manifest(tmp_path, "0" * 64)  # built from other sources (e.g. kernel.c edited in an editable install)
    assert kernel_sources.installed_library(tmp_path) is None


def test_sources_hash_covers_names_and_bytes(tmp_path):
    a, b = tmp_path / "a.c", tmp_path / "b.c"
    a.write_text("int x;"), b.write_text("int x;")
    assert kernel_sources.sources_sha256([a]) != kernel_sources.sources_sha256([b])
    before = kernel_sources.sources_sha256([a, b])
    assert kernel_sources.sources_sha256([b, a]) == before
    a.write_text("int y;")
    assert kernel_sources.sources_sha256([a, b]) != before
