"""OpenMP's wait policy for loopynet's CLI: training speed under OpenMP's default waiting (idle threads spin,
then sleep) and its alternatives, on the classifier (the book's network and the imdb-rnn recipe), the
CoNLL tagger and tuning workers, on slices of the real data.

    python benchmarks/omp_policy.py                  # 2 interleaved rounds of every arm, ~20-40 minutes
    python benchmarks/omp_policy.py --rounds 1 --only book imdb-rnn --arms default passive

Each run is the real CLI in a fresh process (libgomp reads its variables when torch loads), with the
CLI's own choice (loopynet/omp_policy.py) turned off except in the arm "cli". Arms (ARMS):
  default     OMP_WAIT_POLICY unset: OpenMP's default (libgomp: spin ~300,000 rounds, then sleep)
  passive     OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep at once
  spin-10k    GOMP_SPINCOUNT=10000: libgomp's spin shortened ~30x, policy unset
  torch-1     torch.set_num_threads(1) (no OpenMP workers to spin), loopynet's C kernels still on the
              thread count torch had (2 here), policy unset
  cli         what the CLI chooses by itself
The arms rotate from round to round, and every run records the 1-minute load average before it
starts: on a machine shared with other jobs the answer depends on that load. Training throughput is
the samples/s of the history's last epoch (tuning: the wall time of the whole command). Table on
stdout (each arm's speed / the default's), JSON in benchmarks/results/omp_policy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED_DATA = Path(os.environ.get("LOOPYNET_SHARED_DATA", HERE.parents[1] / "shared" / "data"))
# The CLI, with its own choice off unless BENCH_OMP_ARM is "cli"; arm "torch-1" keeps loopynet's kernels on
# torch's thread count and then puts torch itself on one thread (torch loads only then: after the policy).
LAUNCH = """import os, sys
from loopynet import cli
arm = os.environ.pop('BENCH_OMP_ARM')
if arm != 'cli':
    cli.choose_wait_policy = lambda *args, **kwargs: None
if arm == 'torch-1':
    import torch
    from loopynet.models import fast_kernel
    n = torch.get_num_threads()
    fast_kernel.Kernels._threads = staticmethod(lambda rows: max(1, min(n, -(-rows // fast_kernel.ROWS))))
    fast_kernel.Kernels._threads_for = staticmethod(lambda elements: max(1, min(n, elements >> 16)))
    torch.set_num_threads(1)
sys.exit(cli.main(sys.argv[1:]))"""
ARMS = {"default": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}, "spin-10k": {"GOMP_SPINCOUNT": "10000"},
        "torch-1": {}, "cli": {}}
SPACE = 'epochs = 1\nmaxlen = 100\n[units]\nlow = 20\nhigh = 40\nstep = 10\n'


def workloads(data: Path, out: Path) -> dict[str, list[str]]:
    imdb, vectors = str(data / "aclImdb_v1_labeled.tar.gz"), str(data / "en_vectors_300d.bin.gz")
    (out / "space.toml").write_text(SPACE)
    return {
        "book": ["train", "--data", imdb, "--vectors", vectors, "--limit", "5000", "--epochs", "1"],
        "imdb-rnn": ["train", "--preset", "imdb-rnn", "--data", imdb, "--vectors", vectors, "--limit", "1000",
                     "--epochs", "1"],
        "tagger": ["tag", "train", "--data", str(data / "conll2003"), "--vectors",
                   str(data / "glove_6B_50d_conll.bin.gz"), "--limit", "400", "--validation-limit", "100",
                   "--epochs", "1"],
        "tune (2 workers)": ["tune", "--data", imdb, "--vectors", vectors, "--limit", "600", "--trials", "2",
                             "--workers", "2", "--space", str(out / "space.toml"), "--sampler", "random"],
    }


def run(name: str, argv: list[str], arm: str, out: Path) -> dict:
    """One CLI run under `arm` (ARMS); its throughput and the load average before it."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env |= ARMS[arm] | {"BENCH_OMP_ARM": arm}
    folder = out / f"{name.split()[0]}-{arm}-{time.monotonic_ns()}"
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", LAUNCH, *argv, "--out", str(folder)], env=env,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{name} ({arm}) failed with exit code {proc.returncode}: {proc.stderr.strip()[-500:]}")
    record = {"arm": arm, "load_average_before": load, "wall_seconds": seconds}
    history = folder / "history.json"
    if history.exists():
        record["samples_per_second"] = json.loads(history.read_text())[-1]["samples_per_second"]
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--only", nargs="+", help="workloads to run (default all)")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS), help="arms (default all)")
    parser.add_argument("--data", default=str(SHARED_DATA))
    parser.add_argument("--json", default=str(HERE / "results" / "omp_policy.json"))
    args = parser.parse_args(argv)
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="omp_policy-") as tmp:
        jobs = workloads(Path(args.data), Path(tmp))
        for name in args.only or list(jobs):
            for k in range(args.rounds):
                for arm in args.arms[k % len(args.arms):] + args.arms[: k % len(args.arms)]:
                    record = run(name, jobs[name], arm, Path(tmp))
                    results.setdefault(name, []).append(record)
                    print(f"{name:<18}{arm:<9}{record.get('samples_per_second', float('nan')):>10.1f} samples/s"
                          f"{record['wall_seconds']:>9.1f} s wall   load average {record['load_average_before']:.1f}",
                          flush=True)
    print(f"\n{'workload':<18}" + "".join(f"{arm:>18}" for arm in args.arms)
          + "  (samples/s, x the default; tune: 1/wall s)")
    summary = {}
    for name, records in results.items():
        def speed(r):
            return r.get("samples_per_second") or 1.0 / r["wall_seconds"]
        arms = {arm: statistics.median(speed(r) for r in records if r["arm"] == arm) for arm in args.arms}
        loads = [r["load_average_before"] for r in records]
        base = arms.get("default")
        summary[name] = {"samples_per_second": arms, "load_average_range": [min(loads), max(loads)],
                         "over_default": {arm: v / base for arm, v in arms.items()} if base else None}
        print(f"{name:<18}" + "".join(f"{v:>10.4g}" + (f" ({v / base:.2f}x)" if base else " " * 8)
                                      for v in arms.values()) + f"  load average {min(loads):.1f}-{max(loads):.1f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"runs": results, "summary": summary, "cpu_count": os.cpu_count()},
                                          indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
