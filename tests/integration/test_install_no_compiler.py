"""A wheel built by setup.py, installed into a fresh virtual environment, runs loopynet's compiled kernels
with no C compiler on PATH (the installed library: nothing is built at run time), and they compute what the
pure-PyTorch path computes (the SimpleRNN of kernel.c, a bidirectional LSTM of cells_kernel.c)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import os, shutil, warnings
warnings.simplefilter("error")  # a fallback warning fails the check
import torch
import loopynet
from loopynet.models import cells, fast_kernel
from loopynet.models.simple_rnn import SimpleRNN
assert not any(shutil.which(c) for c in ("cc", "gcc", "clang")), "a compiler is on PATH"
kernels = fast_kernel.kernels()
print("loopynet:", loopynet.__file__)
print("kernel:", kernels.kind, kernels.path)
layer = SimpleRNN(6, 5, torch.Generator().manual_seed(0))
x = torch.randn(3, 7, 6, generator=torch.Generator().manual_seed(1))
lstm = torch.nn.LSTM(6, 4, batch_first=True, bidirectional=True)
with torch.no_grad():
    fused, _ = cells.run("lstm", cells.weights(lstm), kernels, x=x, lengths=torch.full((3,), 7))
    plain, _ = lstm(x)
print("fused LSTM, max abs difference to torch.nn:", float((fused - plain).abs().max()))
with torch.no_grad():
    fast, _ = layer(x)
    os.environ["LOOPYNET_KERNEL"] = "torch"
    slow, _ = layer(x)
print("max abs difference to pure PyTorch:", float((fast - slow).abs().max()))
"""


def _run(command, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)
    assert done.returncode == 0, f"{command}: {done.stderr[-3000:]}"
    return done


@pytest.mark.integration
def test_installed_wheel_uses_its_kernels_without_a_compiler(tmp_path):
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--wheel-dir", str(tmp_path / "wheels"), str(ROOT)])
    wheel, = (tmp_path / "wheels").glob("loopynet-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index",
          str(wheel)])
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch, NumPy: the installed ones
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp_path), "LOOPYNET_HOME": str(tmp_path / "home")}
    out = _run([str(python), "-c", CHECK], env=env, cwd=tmp_path).stdout
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert lines["loopynet"].startswith(str(site))
    kind, path = lines["kernel"].rsplit(" ", 1)
    assert kind.startswith("installed ") and Path(path).parent == site / "loopynet" / "models", out
    assert float(lines["max abs difference to pure PyTorch"]) < 1e-5
    assert float(lines["fused LSTM, max abs difference to torch.nn"]) < 1e-5  # cells_kernel.c is in the wheel too
    assert not (tmp_path / "home" / "cache" / "kernels").exists()  # nothing was compiled at run time
