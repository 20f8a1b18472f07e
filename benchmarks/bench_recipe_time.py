"""A recipe's training time with loopynet's fused LSTM/GRU kernels against the same recipe on torch.nn (issue 17,
part 4: the imdb-rnn recipe's wall time >= 2.5x shorter at the same accuracy).

Both arms run the same command, `loopynet train --preset <preset> --seed S --threads N --quiet ...`, under
`/usr/bin/time -v` (wall and user CPU seconds, peak RSS; the load average at each start is recorded); the
training loop's own wall seconds (epochs and their validation) come from the run's history:
  fused     the default (the compiled kernels: models/cells_kernel.c)
  torch.nn  LOOPYNET_KERNEL=torch: every compiled kernel off, so the LSTM/GRU runs as torch.nn.LSTM/GRU
Each arm keeps its own defaults otherwise (the CLI's OpenMP wait policy follows whether compiled kernels run).
The arms alternate within every round (their order flips each round), so both see the same machine load.
`--limit` and `--epochs` make a slice of the recipe (the full recipe: --limit 0, the preset's epochs); on a
shared machine the user CPU ratio is the robust one, the wall ratio is the one users see when it is idle.
Prints a table and writes JSON (benchmarks/results/bench_recipe_time.json). `--preset tagger` times the tagger
recipe instead (`loopynet tag train` at its defaults on CoNLL-2003 with GloVe 50-d, validation entity F1).

    python benchmarks/bench_recipe_time.py --limit 3000 --epochs 1          # a slice, one round
    python benchmarks/bench_recipe_time.py --limit 0 --rounds 1             # the whole recipe
    python benchmarks/bench_recipe_time.py --preset tagger --limit 0 --epochs 3 --threads 2   # tagger epochs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from imdb_recipes import DATA, LOOPYNET, parse_time, validation_of  # noqa: E402

ARMS = {"fused": {}, "torch.nn": {"LOOPYNET_KERNEL": "torch"}}  # environment each arm adds


def arm_env(arm: str, threads: int, base: dict | None = None) -> dict:
    """The environment of one arm's run: `base` (default os.environ) without LOOPYNET_KERNEL, plus the arm's
    own settings and OMP_NUM_THREADS = threads."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k != "LOOPYNET_KERNEL"}
    return {**env, **ARMS[arm], "OMP_NUM_THREADS": str(threads)}


TAGGER = "tagger"  # --preset tagger: `loopynet tag train` at its defaults (the tagger recipe) on CoNLL-2003


def train_command(args, out: Path) -> list[str]:
    """`loopynet train` (or, for --preset tagger, `loopynet tag train`) for one run of the recipe (both arms run
    exactly this)."""
    common = ["--seed", str(args.seed), "--threads", str(args.threads), "--quiet", "--out", str(out)]
    if args.preset == TAGGER:
        command = [*LOOPYNET, "tag", "train", "--data", str(DATA / "conll2003"), "--vectors",
                   str(DATA / "glove_6B_50d_conll.bin.gz"), *common]
    else:
        command = [*LOOPYNET, "train", "--data", str(DATA / "aclImdb_v1_labeled.tar.gz"), "--vectors",
                   str(DATA / "en_vectors_300d.bin.gz"), "--preset", args.preset, *common]
    if args.limit:
        command += ["--limit", str(args.limit)]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    return command


def validation(history: list[dict]) -> dict:
    """The run's validation result: the classifier's (`imdb_recipes.validation_of`), or the tagger's entity F1 of
    the kept epoch (the last one when none is marked) and every epoch's."""
    if not any("val_f1" in r for r in history):
        return validation_of(history)
    epochs = [r for r in history if "val_f1" in r]
    kept = next((r for r in epochs if r.get("kept")), epochs[-1])
    return {"val_f1": kept["val_f1"], "epochs_val_f1": [[r["epoch"], r["val_f1"]] for r in epochs]}


def run_arm(arm: str, args, folder: Path) -> dict:
    """Train once on `arm` under /usr/bin/time -v: its times, peak RSS, load at start and validation accuracy."""
    out, report = folder / arm, folder / f"{arm}.time"
    load = Path("/proc/loadavg").read_text().split()[:3]
    with open(folder / f"{arm}.log", "w") as log:
        subprocess.run(["/usr/bin/time", "-v", "-o", str(report), *train_command(args, out)], check=True, stdout=log,
                       stderr=log, env=arm_env(arm, args.threads))
    history = json.loads((out / "history.json").read_text())
    record = {"arm": arm, **parse_time(report.read_text(), load), **epoch_seconds(history)}
    return record | validation(history)


def epoch_seconds(history: list[dict]) -> dict:
    """Wall seconds of the training loop alone, from the run's history: its epochs' and their validations'
    (loading the vectors and tokenising, the same in both arms, are outside it)."""
    return {"epochs_s": sum(r.get("seconds", 0.0) for r in history),
            "validation_s": sum(r.get("val_seconds", 0.0) for r in history)}


def summary(runs: list[dict]) -> dict:
    """Per arm the median wall, user CPU and training-loop (epochs) seconds and the validation accuracies; the
    torch.nn / fused ratios of the medians (how many times shorter the fused recipe is)."""
    arms = {}
    for arm in ARMS:
        rows = [r for r in runs if r["arm"] == arm]
        arms[arm] = {"wall_s": statistics.median(r["wall_s"] for r in rows),
                     "user_cpu_s": statistics.median(r["user_cpu_s"] for r in rows),
                     "epochs_s": statistics.median(r["epochs_s"] for r in rows),
                     "peak_rss_gb": max(r["peak_rss_gb"] for r in rows),
                     "val_accuracy": [r.get("val_accuracy") for r in rows], "val_f1": [r.get("val_f1") for r in rows]}
    return {"arms": arms, **{f"{key}_ratio": arms["torch.nn"][f"{key}_s"] / arms["fused"][f"{key}_s"]
                             for key in ("wall", "user_cpu", "epochs")}}


def table(result: dict) -> str:
    f1 = any(a is not None for row in result["arms"].values() for a in row.get("val_f1", []))
    lines = [f"{'arm':<10}{'wall s':>9}{'user CPU s':>12}{'epochs s':>10}{'peak RSS GB':>13}  "
             + ("val entity F1" if f1 else "val accuracy")]
    for arm, row in result["arms"].items():
        accuracies = ", ".join("-" if a is None else f"{a:.4f}" for a in row["val_f1" if f1 else "val_accuracy"])
        lines.append(f"{arm:<10}{row['wall_s']:>9.1f}{row['user_cpu_s']:>12.1f}{row['epochs_s']:>10.1f}"
                     f"{row['peak_rss_gb']:>13.2f}  {accuracies}")
    lines.append(f"torch.nn / fused: wall {result['wall_ratio']:.2f}x, user CPU {result['user_cpu_ratio']:.2f}x, "
                 f"training loop (epochs) {result['epochs_ratio']:.2f}x")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="imdb-rnn", help=f"a classifier preset, or {TAGGER!r}: tag train's defaults")
    parser.add_argument("--limit", type=int, default=3000, help="documents or sentences (0: all)")
    parser.add_argument("--epochs", type=int, default=1, help="0: the preset's")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", default=str(HERE / "results" / "bench_recipe_time.json"))
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_recipe_time-") as tmp:
        for r in range(args.rounds):
            for arm in (list(ARMS) if r % 2 == 0 else list(ARMS)[::-1]):
                runs.append(run_arm(arm, args, Path(tmp)) | {"round": r})
                print(json.dumps(runs[-1]), flush=True)
    result = summary(runs)
    print(table(result))
    from loopynet.io.atomic import atomic_file

    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.json, "w") as f:
        config = vars(args) | {"json": os.path.relpath(args.json, HERE.parent)}  # no machine paths in results
        json.dump({"config": config, "runs": runs, **result}, f, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
