"""benchmarks/gpu_check.sh without CUDA stops with one clear line before installing anything, and the
script's checks run on the CPU (the path a GPU machine takes with --device cpu)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_without_cuda_the_script_stops_with_one_line():
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 2
    assert run.stdout == ""
    line, = run.stderr.strip().splitlines()
    assert line.startswith("gpu_check: error: CUDA is not available (") and line.endswith("on the CPU")


def test_the_checks_run_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
                          "--docs", "24", "--json", str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())["results"]
    assert [r["check"] for r in results] == ["book SimpleRNN(50)", "book SimpleRNN(100)", "imdb-rnn epoch, 24 reviews"]
    assert all(r["samples_per_second"] > 0 and r["seconds"] > 0 for r in results)
    assert all(r["max_abs_logit_difference_vs_cpu"] == 0.0 for r in results[:2])  # the same CPU code both times
    assert 0.3 < results[2]["mean_loss"] < 1.5  # binary cross-entropy of an untrained network: ~ln 2
    assert run.stdout.count("\n| ") == 4  # header and three rows
