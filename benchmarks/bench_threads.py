"""What a second thread buys loopynet's book network: training samples/s on 1 and on 2 threads, in one
process, in interleaved repeats (so both see the same machine load), and the per-phase breakdown on each.

The step is bench_train.py's loopynet contender (BookClassifier on the compiled kernels, batch 32, maxlen 400,
300-d frozen vectors, synthetic Zipf ids, RMSprop) and the breakdown is bench_train's `breakdown`, in wall
time on both thread counts. OMP_WAIT_POLICY is what loopynet's CLI would choose
(loopynet/omp_policy.py), set before torch loads. Prints a table and writes JSON (benchmarks/results/).

    .venv/bin/python benchmarks/bench_threads.py                  # 50 and 100 units, threads 1 and 2
    .venv/bin/python benchmarks/bench_threads.py --units 50 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from loopynet.models.kernel_sources import kernels_expected  # noqa: E402  (standard library only: no torch)
from loopynet.omp_policy import choose_wait_policy  # noqa: E402

choose_wait_policy(compiled_kernels=kernels_expected("cpu"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bench_train  # noqa: E402


def timed_repeats(step, ids, labels, thread_counts, repeats: int, steps: int) -> dict[int, list[dict]]:
    """{threads: [{samples_per_s, cpu_ms_per_step}, ...]}: `steps` training steps per repeat on each thread
    count, the counts interleaved within every repeat (their order alternating)."""
    batch = ids.shape[1]
    runs = {t: [] for t in thread_counts}
    for r in range(repeats):
        for threads in (thread_counts if r % 2 == 0 else thread_counts[::-1]):
            torch.set_num_threads(threads)
            step(torch.from_numpy(ids[0]), torch.from_numpy(labels[0]))  # first step after a switch: untimed
            start, cpu = time.perf_counter(), time.process_time()
            for k in range(steps):
                step(torch.from_numpy(ids[k % len(ids)]), torch.from_numpy(labels[k % len(ids)]))
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            runs[threads].append({"samples_per_s": steps * batch / wall, "cpu_ms_per_step": 1e3 * cpu / steps})
    return runs


def summary(runs: dict[int, list[dict]]) -> dict:
    """Per thread count the median samples/s and CPU ms per step, and each count's speed-up over the first
    as the median of the per-repeat ratios (with their min and max)."""
    counts = list(runs)
    base = runs[counts[0]]
    out = {}
    for threads, rows in runs.items():
        ratios = [r["samples_per_s"] / b["samples_per_s"] for r, b in zip(rows, base)]
        out[threads] = {"samples_per_s": statistics.median(r["samples_per_s"] for r in rows),
                        "cpu_ms_per_step": statistics.median(r["cpu_ms_per_step"] for r in rows),
                        "speedup": statistics.median(ratios), "speedup_min": min(ratios), "speedup_max": max(ratios)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="training steps per repeat")
    parser.add_argument("--breakdown-steps", type=int, default=20)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--json", default=str(HERE / "results" / "bench_threads.json"))
    args = parser.parse_args(argv)
    ids, labels, embeddings = bench_train.synthetic_data(args.batches, 32, 400, 300, 55_000, 1.12)
    from loopynet.models import fast_kernel

    kernel = fast_kernel.kernels()
    report = {"config": vars(args), "kernel": kernel.kind if kernel else "none (pure PyTorch)",
              "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"), "load_average_at_start": os.getloadavg(),
              "units": {}}
    print(f"kernel: {report['kernel']}; OMP_WAIT_POLICY {report['OMP_WAIT_POLICY']}; load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    for units in args.units:
        load = os.getloadavg()[0]
        _, step = bench_train.torch_step_fn("loopynet", units, 0.2, embeddings, ids.shape[2])
        for _ in range(2):
            step(torch.from_numpy(ids[0]), torch.from_numpy(labels[0]))
        result = summary(timed_repeats(step, ids, labels, args.threads, args.repeats, args.steps))
        breakdowns = {t: bench_train.breakdown(units, 0.2, embeddings, ids, labels, t, args.breakdown_steps, wall=True)
                      for t in args.threads}
        report["units"][str(units)] = {"load_average_at_start": load, "load_average_at_end": os.getloadavg()[0],
                                       "throughput": result, "breakdown_ms": breakdowns}
        print(f"\n{units} units (load average {load:.2f} -> {os.getloadavg()[0]:.2f}); {args.repeats} repeats of "
              f"{args.steps} steps, median")
        print(f"  {'threads':<9}{'samples/s':>11}{'CPU ms/step':>13}{'vs first':>10}{'min-max':>14}")
        for threads, row in result.items():
            print(f"  {threads:<9}{row['samples_per_s']:>11.0f}{row['cpu_ms_per_step']:>13.2f}{row['speedup']:>9.2f}x"
                  f"{row['speedup_min']:>8.2f}-{row['speedup_max']:.2f}")
        phases = [p for p in breakdowns[args.threads[0]] if p != "clock"]
        clocks = ", ".join(f"{t}: {b.get('clock')}" for t, b in breakdowns.items())
        print(f"  breakdown, median ms ({clocks}):")
        print(f"  {'phase':<40}" + "".join(f"{str(t) + ' thr':>10}" for t in args.threads) + f"{'ratio':>8}")
        for phase in phases:
            values = [breakdowns[t].get(phase) for t in args.threads]
            ratio = values[0] / values[-1] if all(isinstance(v, float) and v > 0 for v in values) else float("nan")
            print(f"  {phase:<40}" + "".join(f"{v:>10.3f}" if isinstance(v, float) else f"{v!s:>10}"
                                             for v in values) + f"{ratio:>7.2f}x")
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
