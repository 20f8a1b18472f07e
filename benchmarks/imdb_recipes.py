"""IMDB recipes (issue 18): each idea measured on validation, the final recipes on the test split, over seeds.

Every run is `loopynet train --threads 1 --quiet` under `/usr/bin/time -v` (wall time, user CPU time,
peak RSS; the load average at its start is recorded: on the shared 2-core machine a load above 1 means
the run waited for the CPU, so wall time > CPU time). Choices are made on the validation part the
recipe holds out (10% of the training split, stratified, seeded by --seed); `--test` evaluates the
trained model on all 25,000 test reviews and is meant for final recipes only (the test split is
touched once per final recipe and seed). Records go to benchmarks/results/imdb_recipes.json (one per
name and seed, replaced when rerun).

    python benchmarks/imdb_recipes.py run e3d1 -- --preset imdb-rnn --epochs 3 --lr-decay 1 --patience 0
    python benchmarks/imdb_recipes.py run imdb-rnn --seed 1 --test -- --preset imdb-rnn
    python benchmarks/imdb_recipes.py test imdb-rnn --seed 1      # a recorded run, once chosen as final
    python benchmarks/imdb_recipes.py member0 imdb-rnn-ensemble imdb-rnn --seed 1   # its member 0 = imdb-rnn
    python benchmarks/imdb_recipes.py table
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LOOPYNET_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "imdb_recipes.json"
RUNS = ROOT / "runs" / "imdb_recipes"
LOOPYNET = [sys.executable, "-m", "loopynet.cli"]
SAMPLE_1 = ("I hate that the dismal weather had me down for so long, when will it break! Ugh, when does happiness "
            "return? The sun is blinding and the puffy clouds are too thin. I can't wait for the weekend.")


def timed(command: list[str], time_file: Path, log) -> dict:
    """Run `command` under /usr/bin/time -v (output to `log`); its wall and user seconds, peak RSS, load at start."""
    load = Path("/proc/loadavg").read_text().split()[:3]
    subprocess.run(["/usr/bin/time", "-v", "-o", str(time_file), *command], check=True, stdout=log, stderr=log,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    return parse_time(time_file.read_text(), load)


def parse_time(text: str, load: list[str]) -> dict:
    """wall_s, user_cpu_s, peak_rss_gb of a `/usr/bin/time -v` report, and the load average given."""
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    seconds = 0.0
    for part in clock.split(":"):
        seconds = seconds * 60 + float(part)
    return {"wall_s": seconds, "user_cpu_s": float(re.search(r"User time \(seconds\): (\S+)", text).group(1)),
            "peak_rss_gb": int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 2**20,
            "load_at_start": [float(x) for x in load]}


def validation_of(history: list[dict], log: str = "") -> dict:
    """The validation accuracy the run ends with: an n-gram mix's (from the run's `log`), else a seed ensemble's
    averaged record, else the kept epoch's; and every epoch's."""
    final = history[-1] if history else {}
    if final.get("member") != "ensemble":
        final = next((r for r in history if r.get("kept")), final)
    record = {"epochs_val_accuracy": [[r.get("member", 0), r["epoch"], r["val_accuracy"]] for r in history if "epoch" in r]}
    if final:
        record |= {"val_accuracy": final["val_accuracy"], "val_loss": final["val_loss"]}
    mix = re.search(r"mix on validation: logit = (.*); val_accuracy rnn (\S+), ngram (\S+), mixed (\S+)", log)
    if mix:
        record |= {"mix": mix.group(1), "val_accuracy_rnn": float(mix.group(2).rstrip(",")),
                   "val_accuracy_ngram": float(mix.group(3).rstrip(",")), "val_accuracy": float(mix.group(4))}
    return record


def beside(out: Path, suffix: str) -> Path:
    """The file `out` + suffix next to the run folder `out` (not `with_suffix`: a name such as
    "ensemble-ema0.999-s1" would lose ".999-s1", and two seeds would share one file)."""
    return out.parent / (out.name + suffix)


def measure(name: str, flags: list[str], seed: int, test: bool) -> dict:
    out = RUNS / f"{name}-s{seed}"
    out.parent.mkdir(parents=True, exist_ok=True)
    data, vectors = DATA / "aclImdb_v1_labeled.tar.gz", DATA / "en_vectors_300d.bin.gz"
    with open(beside(out, ".log"), "w") as log:
        record = {"name": name, "seed": seed, "flags": flags,
                  "train": timed([*LOOPYNET, "train", "--data", str(data), "--vectors", str(vectors), "--threads", "1",
                                  "--quiet", "--seed", str(seed), "--out", str(out), *flags],
                                 beside(out, ".time"), log)}
        record |= validation_of(json.loads((out / "history.json").read_text()), beside(out, ".log").read_text())
        if test:
            record |= test_metrics(out, data, log)
    return record


def test_metrics(out: Path, data: Path, log) -> dict:
    """Test-split metrics of the model folder `out`, and P(pos) of the chapter's sample_1."""
    metrics_file = beside(out, ".test.json")
    with open(metrics_file, "w") as sink:
        timing = timed([*LOOPYNET, "evaluate", str(out), "--data", str(data), "--json"], beside(out, ".evaltime"),
                       sink)
    metrics = json.loads(metrics_file.read_text())
    predicted = subprocess.run([*LOOPYNET, "predict", str(out), SAMPLE_1, "--json"], check=True, capture_output=True,
                               text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout
    return {"test": {k: metrics[k] for k in ("accuracy", "precision", "recall", "f1", "loss", "confusion_matrix")},
            "evaluate": timing, "sample_1_probability": json.loads(predicted)[0]["probability"]}


def first_member(name: str, seed: int, new_name: str) -> dict:
    """Save member 0 of the seed ensemble run `name` as a model folder of its own, `new_name`: it is exactly the
    single network trained with the same flags and seed without --members (tests/unit/test_seed_ensemble.py),
    so its numbers are that recipe's at no training cost. Its training time: member 0's epochs (seconds)."""
    from dataclasses import replace

    from loopynet import Classifier

    clf = Classifier.load(RUNS / f"{name}-s{seed}")
    history = [{k: v for k, v in r.items() if k != "member"} for r in clf.history if r.get("member") == 0]
    config = replace(clf.model.config, members=1)
    member = clf.model.members[0]
    member.config = config
    replace(clf, model=member, history=history).save(RUNS / f"{new_name}-s{seed}")
    source = next(r for r in json.loads(RESULTS.read_text()) if (r["name"], r["seed"]) == (name, seed))
    flags = ["--preset", "imdb-rnn"] if source["flags"] == ["--preset", "imdb-rnn-ensemble"] else source["flags"]
    if "--members" in flags:
        flags = flags[: flags.index("--members")] + flags[flags.index("--members") + 2:]
    return {"name": new_name, "seed": seed, "flags": flags, "member_0_of": name,
            "train": {"epochs_s": sum(r["seconds"] + r.get("val_seconds", 0) for r in history)}, **validation_of(history)}


def save(record: dict) -> None:
    """Add or replace the record, under a lock (runs of two seeds or recipes may finish at once)."""
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        records = [r for r in records if (r["name"], r["seed"]) != (record["name"], record["seed"])] + [record]
        tmp = RESULTS.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(records, indent=1) + "\n")
        os.replace(tmp, RESULTS)


def table() -> None:
    records = json.loads(RESULTS.read_text())
    print(f"{'name':28} {'seed':>4} {'val_acc':>7} {'test_acc':>8} {'wall':>7} {'cpu':>7} {'RSS GB':>6} {'load':>5}")
    for r in records:
        test = f"{r['test']['accuracy']:8.4f}" if "test" in r else f"{'-':>8}"
        t = r["train"]
        if "wall_s" not in t:  # member 0 of an ensemble run: its epochs' seconds only
            print(f"{r['name']:28} {r['seed']:4d} {r['val_accuracy']:7.4f} {test} {t['epochs_s']:6.0f}s (member 0 of "
                  f"{r['member_0_of']})")
            continue
        print(f"{r['name']:28} {r['seed']:4d} {r['val_accuracy']:7.4f} {test} {t['wall_s']:6.0f}s {t['user_cpu_s']:6.0f}s "
              f"{t['peak_rss_gb']:6.2f} {t['load_at_start'][0]:5.1f}")
    for name in dict.fromkeys(r["name"] for r in records if "test" in r):
        accs = [r["test"]["accuracy"] for r in records if r["name"] == name and "test" in r]
        sd = statistics.stdev(accs) if len(accs) > 1 else float("nan")
        print(f"{name}: test accuracy {statistics.mean(accs):.4f} ± {sd:.4f} over {len(accs)} seeds "
              f"({', '.join(f'{a:.4f}' for a in accs)})")


def main() -> None:
    argv = sys.argv[1:]
    flags = argv[argv.index("--") + 1:] if "--" in argv else []  # `loopynet train` flags after --
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train (and with --test evaluate) one recipe and record it")
    run.add_argument("name")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--test", action="store_true", help="evaluate on the test split (final recipes only)")
    test = sub.add_parser("test", help="evaluate an already recorded run on the test split (once chosen as final)")
    test.add_argument("name")
    test.add_argument("--seed", type=int, default=0)
    member = sub.add_parser("member0", help="record member 0 of a recorded seed ensemble run as a recipe of its own")
    member.add_argument("name")
    member.add_argument("new_name")
    member.add_argument("--seed", type=int, default=0)
    sub.add_parser("table", help="print the recorded runs")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.command == "table":
        return table()
    if args.command == "member0":
        save(first_member(args.name, args.seed, args.new_name))
        return table()
    if args.command == "test":
        record = next(r for r in json.loads(RESULTS.read_text()) if (r["name"], r["seed"]) == (args.name, args.seed))
        out = RUNS / f"{args.name}-s{args.seed}"
        with open(beside(out, ".log"), "a") as log:
            record |= test_metrics(out, DATA / "aclImdb_v1_labeled.tar.gz", log)
        save(record)
        return table()
    save(measure(args.name, flags, args.seed, args.test))
    table()


if __name__ == "__main__":
    main()
