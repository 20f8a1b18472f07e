"""The installed kernels (built by setup.py at install time, portable targets) against the run-time build
(-march=native) and the pure-PyTorch fallback: training speed of the book's network.

    python benchmarks/bench_kernel_install.py                 # 50 and 100 units, 3 interleaved repeats
    python benchmarks/bench_kernel_install.py --units 50 --repeats 1 --steps 3 --torch-steps 1  # a quick check

Needs loopynet installed with its kernels (`pip install .` or `pip install -e .`, which run setup.py).
Contenders, each timed in its own process (one library per process), in interleaved repeats whose order
rotates so that all see the same machine load:
  installed-x86_64_v4  the wheel's AVX-512 build (chosen at run time on CPUs that have AVX-512 F/BW/CD/DQ/VL)
  installed-x86_64_v3  the wheel's AVX2/FMA build (chosen on CPUs with those features but no AVX-512)
  installed-baseline   the wheel's build for the compiler's default target (runs on every CPU)
  jit-native           the run-time build with -march=native (LOOPYNET_KERNEL=jit; needs `cc`)
  torch                LOOPYNET_KERNEL=torch: no compiled kernels (what a user without either gets)
A step is the training step of loopynet's loop (forward, loss, zero_grad, backward, RMSprop step,
loss.item()) of BookClassifier (NLP in Action 8.1.5: batch 32, maxlen 400, 300-d vectors, dropout 0.2) on
bench_train.py's synthetic batches. Each worker prints its kernel line (which library ran). Reports
samples/s (median over repeats), CPU ms per step (process CPU time: with --threads 1 robust to other jobs)
and the ratio to jit-native (median of per-repeat ratios of samples/s). Table on stdout, JSON in
benchmarks/results/bench_kernel_install.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKER = r"""
import ctypes, json, sys, time
sys.path.insert(0, sys.argv[1])
import torch, torch.nn.functional as F
from bench_train import synthetic_data
from loopynet.config import ModelConfig
from loopynet.models import fast_kernel
from loopynet.models.classifier import BookClassifier
contender, units, steps, threads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if threads:
    torch.set_num_threads(threads)
if contender.startswith("installed-"):
    variant = contender.removeprefix("installed-")
    folder = fast_kernel.Path(fast_kernel.__file__).parent
    manifest = json.loads((folder / fast_kernel.kernel_sources.MANIFEST).read_text())
    path = folder / manifest["variants"][variant]["file"]
    fast_kernel._loaded = fast_kernel.Kernels(ctypes.CDLL(str(path)), path, f"installed {variant}")
kernels = fast_kernel.kernels()
line = "kernel: torch (no compiled kernels)" if kernels is None else f"kernel: {kernels.kind} {kernels.path}"
ids, labels, vectors = synthetic_data(8, 32, 400, 300, 55_000, 1.12, seed=0)
torch.manual_seed(0)
model = BookClassifier(ModelConfig(units=units), torch.from_numpy(vectors)).train()
opt = torch.optim.RMSprop([p for p in model.parameters() if p.requires_grad], lr=1e-3, alpha=0.9, eps=1e-7)
batches = [(torch.from_numpy(i), torch.from_numpy(y)) for i, y in zip(ids, labels)]
def step(n):
    x, y = batches[n % len(batches)]
    loss = F.binary_cross_entropy_with_logits(model(x), y)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return loss.item()
for n in range(3):
    step(n)
start, cpu = time.perf_counter(), time.process_time()
for n in range(steps):
    step(n)
print(json.dumps({"kernel_line": line, "samples_per_second": steps * 32 / (time.perf_counter() - start),
                  "cpu_ms_per_step": 1e3 * (time.process_time() - cpu) / steps}))
"""

CONTENDERS = ("installed-x86_64_v4", "installed-x86_64_v3", "installed-baseline", "jit-native", "torch")


def run(contender: str, units: int, steps: int, threads: int = 0) -> dict:
    """samples/s and CPU ms per step of one worker process (`threads` 0: torch's default).

    Raises:
        RuntimeError: the worker failed (its stderr's end is in the message).
    """
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    env.pop("LOOPYNET_KERNEL", None)
    if contender in ("jit-native", "torch"):
        env["LOOPYNET_KERNEL"] = "jit" if contender == "jit-native" else "torch"
    done = subprocess.run([sys.executable, "-c", WORKER, str(HERE), contender, str(units), str(steps),
                           str(threads)],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"{contender} worker failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def available(contenders: tuple[str, ...]) -> list[str]:
    """The contenders this install has (an installed variant missing from the manifest is left out)."""
    from loopynet.models import fast_kernel

    folder = Path(fast_kernel.__file__).parent
    try:
        variants = json.loads((folder / fast_kernel.kernel_sources.MANIFEST).read_text())["variants"]
    except OSError:
        variants = {}
    return [c for c in contenders if not c.startswith("installed-") or c.removeprefix("installed-") in variants]


def measure(units: int, names: list[str], steps: int, repeats: int, torch_steps: int, threads: int = 0) -> dict:
    samples, cpu = {name: [] for name in names}, {name: [] for name in names}
    lines = {}
    for repeat in range(repeats):
        order = names[repeat % len(names):] + names[: repeat % len(names)]
        for name in order:
            result = run(name, units, torch_steps if name == "torch" else steps, threads)
            samples[name].append(result["samples_per_second"])
            cpu[name].append(result["cpu_ms_per_step"])
            lines[name] = result["kernel_line"]
    reference = samples.get("jit-native")
    rows = {}
    for name in names:
        ratio = (statistics.median(a / b for a, b in zip(samples[name], reference)) if reference else None)
        rows[name] = {"samples_per_second": samples[name], "median": statistics.median(samples[name]),
                      "cpu_ms_per_step": statistics.median(cpu[name]),
                      "ratio_to_jit_native": ratio, "kernel_line": lines[name]}
    return rows


def table(units: int, rows: dict) -> str:
    out = [f"SimpleRNN({units}), batch 32, maxlen 400, 300-d: training samples/s",
           "| contender | samples/s (median) | CPU ms/step | ÷ jit-native | kernel line |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        ratio = "" if r["ratio_to_jit_native"] is None else f"{r['ratio_to_jit_native']:.2f}"
        out.append(f"| {name} | {r['median']:,.0f} | {r['cpu_ms_per_step']:.2f} | {ratio} | {r['kernel_line']} |")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per compiled worker (default 60)")
    parser.add_argument("--torch-steps", type=int, default=6, help="timed steps of the torch worker (default 6)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads in every worker (default: torch's)")
    parser.add_argument("--json", default=str(HERE / "results" / "bench_kernel_install.json"))
    args = parser.parse_args(argv)
    from loopynet.io.atomic import atomic_file

    names = available(CONTENDERS)
    results = {}
    for units in args.units:
        results[units] = measure(units, names, args.steps, args.repeats, args.torch_steps, args.threads)
        print(table(units, results[units]), flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.json) as f:
        f.write((json.dumps({"load_average": os.getloadavg(), "results": results}, indent=2) + "\n").encode())
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
