"""OpenMP's wait policy for loopynet's CLI: training speed with OpenMP's default waiting (idle threads spin,
then sleep) against OMP_WAIT_POLICY=PASSIVE (they sleep at once), on the classifier (the book's network
and the imdb-rnn recipe), the CoNLL tagger and tuning workers, on slices of the real data.

    python benchmarks/omp_policy.py                  # 2 interleaved rounds, ~10-20 minutes
    python benchmarks/omp_policy.py --rounds 1 --only book imdb-rnn

Each run is the real CLI in a fresh process (libgomp reads the variable when torch loads). "default"
runs with OMP_WAIT_POLICY unset and the CLI's own load-based choice (loopynet/omp_policy.py) turned off,
so OpenMP's default applies whatever the load; "passive" sets the variable. The arms alternate, and
every run records the 1-minute load average before it starts: on a machine shared with other jobs
the answer depends on that load. Training throughput is the samples/s of the history's last epoch
(tuning: the wall time of the whole command). Table on stdout, JSON in
benchmarks/results/omp_policy.json.
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
# The CLI with its load-based choice off: os.getloadavg reports an idle machine to it.
LAUNCH = ("import os, sys; from loopynet import cli\n"
          "if os.environ.pop('BENCH_OMP_DEFAULT', None): os.getloadavg = lambda: (0.0, 0.0, 0.0)\n"
          "sys.exit(cli.main(sys.argv[1:]))")
SPACE = 'epochs = 1\nmaxlen = 100\n[units]\nlow = 20\nhigh = 40\nstep = 10\n'


def workloads(data: Path, out: Path) -> dict[str, list[str]]:
    imdb, vectors = str(data / "aclImdb_v1_labeled.tar.gz"), str(data / "en_vectors_300d.bin.gz")
    (out / "space.toml").write_text(SPACE)
    return {
        "book": ["train", "--data", imdb, "--vectors", vectors, "--limit", "2000", "--epochs", "1"],
        "imdb-rnn": ["train", "--preset", "imdb-rnn", "--data", imdb, "--vectors", vectors, "--limit", "1000",
                     "--epochs", "1"],
        "tagger": ["tag", "train", "--data", str(data / "conll2003"), "--vectors",
                   str(data / "glove_6B_50d_conll.bin.gz"), "--limit", "400", "--validation-limit", "100",
                   "--epochs", "1"],
        "tune (2 workers)": ["tune", "--data", imdb, "--vectors", vectors, "--limit", "600", "--trials", "2",
                             "--workers", "2", "--space", str(out / "space.toml"), "--sampler", "random"],
    }


def run(name: str, argv: list[str], arm: str, out: Path) -> dict:
    """One CLI run under `arm` ('default' or 'passive'); its throughput and the load average before it."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if arm == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
        env["BENCH_OMP_DEFAULT"] = "1"
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
    parser.add_argument("--data", default=str(SHARED_DATA))
    parser.add_argument("--json", default=str(HERE / "results" / "omp_policy.json"))
    args = parser.parse_args(argv)
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="omp_policy-") as tmp:
        jobs = workloads(Path(args.data), Path(tmp))
        for name in args.only or list(jobs):
            for k in range(args.rounds):
                for arm in (("default", "passive") if k % 2 == 0 else ("passive", "default")):
                    record = run(name, jobs[name], arm, Path(tmp))
                    results.setdefault(name, []).append(record)
                    print(f"{name:<18}{arm:<9}{record.get('samples_per_second', float('nan')):>10.1f} samples/s"
                          f"{record['wall_seconds']:>9.1f} s wall   load average {record['load_average_before']:.1f}",
                          flush=True)
    print(f"\n{'workload':<18}{'default':>12}{'passive':>12}{'default/passive':>17}  (samples/s; tune: 1/wall s)")
    summary = {}
    for name, records in results.items():
        def speed(r):
            return r.get("samples_per_second") or 1.0 / r["wall_seconds"]
        arms = {arm: statistics.median(speed(r) for r in records if r["arm"] == arm) for arm in ("default", "passive")}
        loads = [r["load_average_before"] for r in records]
        summary[name] = {**arms, "default_over_passive": arms["default"] / arms["passive"],
                         "load_average_range": [min(loads), max(loads)]}
        print(f"{name:<18}{arms['default']:>12.4g}{arms['passive']:>12.4g}{arms['default'] / arms['passive']:>17.2f}"
              f"  load average {min(loads):.1f}-{max(loads):.1f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"runs": results, "summary": summary, "cpu_count": os.cpu_count()},
                                          indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
