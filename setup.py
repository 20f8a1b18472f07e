"""Install-time build of loopynet's C kernels (the package metadata is in pyproject.toml).

The sources and flags are models/kernel_sources.py's, the ones models/fast_kernel.py compiles at run
time: each source is compiled twice (-DLN_REAL_F32, -DLN_REAL_F64) through generated one-line wrappers
and linked into one shared library per install variant, `loopynet/models/_kernels_<variant>*.so`,
listed in `loopynet/models/_kernels.json` with its flags and the sha256 of the sources. fast_kernel
loads it through ctypes (it is not a Python module). A wheel cannot use -march=native: see
INSTALL_VARIANTS.

Every extension is optional: a variant the compiler rejects is left out, and without a compiler the
install still succeeds (loopynet then builds the kernels at first use, or warns and runs pure PyTorch).
"""

from __future__ import annotations

import json
import platform
import runpy
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = runpy.run_path(str(Path(__file__).parent / "src" / "loopynet" / "models" / "kernel_sources.py"))
MACHINE = platform.machine().lower()
VARIANTS = {name: spec for name, spec in KERNELS["INSTALL_VARIANTS"].items()
            if spec["machines"] is None or MACHINE in spec["machines"]}


class BuildKernels(build_ext):
    """Generates the per-precision wrappers, builds every variant, then writes the manifest of those built."""

    def run(self):
        wrappers = Path(self.build_temp).resolve() / "kernel_wrappers"
        wrappers.mkdir(parents=True, exist_ok=True)
        generated = []
        for source in KERNELS["SOURCES"]:
            for real in ("F32", "F64"):
                wrapper = wrappers / f"{source.stem}_{real.lower()}.c"
                wrapper.write_text(f'#define LN_REAL_{real} 1\n#include "{source}"\n')
                generated.append(str(wrapper))
        for ext in self.extensions:
            ext.sources = generated
        super().run()
        built = {}
        for ext in self.extensions:
            path = Path(self.get_ext_fullpath(ext.name))
            if path.exists():
                built[ext.name.rsplit("_kernels_", 1)[1]] = {"file": path.name, "flags": ext.extra_compile_args}
        if built:
            manifest = {"sources": [s.name for s in KERNELS["SOURCES"] + KERNELS["HEADERS"]],
                        "sources_sha256": KERNELS["sources_sha256"](), "variants": built}
            self._manifest_path().write_text(json.dumps(manifest, indent=1) + "\n")

    def _manifest_path(self) -> Path:
        return Path(self.get_ext_fullpath(self.extensions[0].name)).with_name(KERNELS["MANIFEST"])

    def get_outputs(self):
        return super().get_outputs() + [str(self._manifest_path())]

    def get_export_symbols(self, ext):
        return []  # a ctypes library: no PyInit_ symbol


setup(
    ext_modules=[Extension(f"loopynet.models._kernels_{name}", sources=[],
                           depends=[str(path) for path in KERNELS["SOURCES"] + KERNELS["HEADERS"]],
                           include_dirs=[str(KERNELS["HERE"])],
                           extra_compile_args=[*KERNELS["FLAGS"], *spec["flags"]], extra_link_args=["-pthread"],
                           libraries=["m"], optional=True)
                 for name, spec in VARIANTS.items()],
    cmdclass={"build_ext": BuildKernels},
)
