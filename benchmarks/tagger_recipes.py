"""CoNLL-2003 tagger recipes: collect the measured runs of `benchmarks/tagger_run.sh` into one table and
benchmarks/results/tagger_recipes.json (issue 19: test F1 >= 0.91 in <= 30 min of training on one core).

Each run folder (runs/tagger/NAME) gives: the flags and the load average at the start (meta.txt), wall time,
user CPU time and peak RSS of the training process (`/usr/bin/time -v`, time.txt), the epochs run, the
validation F1 of each epoch and the kept epoch (history.json; early stopping on val_loss restores the best;
without it the last epoch is kept), the validation split's entity F1
(valid.json) and, for the final recipe only, the test split's (test.json: F1, per type, strict mode).
Recipes are chosen on validation F1; the test split is evaluated once per final recipe's seed.

    bash benchmarks/tagger_run.sh conll50-s1 --test --vectors ../shared/data/glove_6B_50d_conll.bin.gz --seed 1
    .venv/bin/python benchmarks/tagger_recipes.py runs/tagger/*            # prints the table, writes the JSON

Rows already in the JSON whose run folders are not given are kept (a run given again replaces its row); so is the
final recipe's list of runs when --final is not given. A run continued from another's checkpoint (its folder's
model.checkpoint copied from run SRC, then `--resume`) has the line `resumed from SRC` in its meta.txt: its row
gets `resumed_from` and `user_cpu_s_total`, its own user CPU plus that of the runs it continues.

References (test F1, conlleval): Lample et al. 2016, BiLSTM-CRF + char-LSTM, 90.94; Ma & Hovy 2016,
BiLSTM-CNN-CRF with 100-d GloVe, 91.21.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
from pathlib import Path

from loopynet.io.atomic import atomic_file

RESULTS = Path(__file__).resolve().parent / "results" / "tagger_recipes.json"
REFERENCES = {"Lample et al. 2016 (BiLSTM-CRF, char-LSTM)": 0.9094, "Ma & Hovy 2016 (BiLSTM-CNN-CRF, GloVe 100-d)": 0.9121}
TYPES = ("PER", "ORG", "LOC", "MISC")


def time_v(text: str) -> dict:
    """wall seconds, user CPU seconds and peak RSS bytes from `/usr/bin/time -v` output."""
    def field(label):
        return re.search(rf"{re.escape(label)}: (.+)", text).group(1).strip()
    parts = [float(p) for p in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")]
    wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return {"wall_s": round(wall, 1), "user_cpu_s": float(field("User time (seconds)")),
            "peak_rss_bytes": int(field("Maximum resident set size (kbytes)")) * 1024,
            "exit_status": int(field("Exit status"))}


def public_flags(flags: str) -> str:
    """The flags with the shared-data folder written as ../shared/data (no machine paths in results)."""
    shared = os.environ.get("LOOPYNET_SHARED_DATA")
    return flags.replace(shared.rstrip("/"), "../shared/data") if shared else flags


def f1s(metrics: dict) -> dict:
    return {"f1": metrics["f1"], "precision": metrics["precision"], "recall": metrics["recall"],
            "strict_f1": metrics["strict"]["f1"], "token_accuracy": metrics["token_accuracy"],
            "oov_rate": metrics["oov_rate"], "per_type": {t: metrics["per_type"][t]["f1"] for t in TYPES}}


def collect(folder: Path) -> dict:
    """One run's row (see the module docstring)."""
    meta = (folder / "meta.txt").read_text()
    history = json.loads((folder / "model" / "history.json").read_text())
    best = next((r for r in history if r.get("kept")), history[-1])  # no early stopping: the last epoch
    row = {"run": folder.name, "flags": public_flags(re.search(r"flags: (.*)", meta).group(1)),
           "start_utc": re.search(r"start (\S+)", meta).group(1),
           "load_at_start": [float(x) for x in re.search(r"load (.*)", meta).group(1).split()],
           **time_v((folder / "time.txt").read_text()), "epochs_run": len(history), "best_epoch": best["epoch"],
           "val_f1_per_epoch": [r["val_f1"] for r in history],
           "valid": f1s(json.loads((folder / "valid.json").read_text()))}
    if (folder / "test.json").is_file():
        row["test"] = f1s(json.loads((folder / "test.json").read_text()))
    if source := re.search(r"resumed from (\S+)", meta):
        row["resumed_from"], row["user_cpu_s_total"] = source.group(1), user_cpu_total(folder)
    return row


def user_cpu_total(folder: Path) -> float:
    """The user CPU seconds of a run and of the runs it continues (`resumed from` lines; a stopped run counts)."""
    own = time_v((folder / "time.txt").read_text())["user_cpu_s"]
    source = re.search(r"resumed from (\S+)", (folder / "meta.txt").read_text())
    return own + (user_cpu_total(folder.parent / source.group(1)) if source else 0.0)


def merged(rows: list[dict], results: Path) -> list[dict]:
    """The rows already in `results` (runs whose folders are gone) followed by `rows`; a run measured again
    replaces its old row."""
    names = {r["run"] for r in rows}
    kept = json.loads(results.read_text())["runs"] if results.is_file() else []
    return [r for r in kept if r["run"] not in names] + rows


def summary(rows: list[dict]) -> dict:
    """Test F1 mean and sample sd over the runs that have a test split."""
    tests = [r["test"]["f1"] for r in rows if "test" in r]
    if len(tests) < 2:
        return {}
    return {"test_f1_mean": statistics.mean(tests), "test_f1_sd": statistics.stdev(tests), "seeds": len(tests)}


def table(rows: list[dict]) -> str:
    lines = ["| run | flags | epochs / best | val F1 | test F1 | " + " | ".join(TYPES) + " | strict | wall | CPU | RSS |",
             "|---" * 13 + "|"]
    for r in rows:
        t = r.get("test")
        cells = [f"{t['f1']:.4f}", *(f"{t['per_type'][k]:.4f}" for k in TYPES), f"{t['strict_f1']:.4f}"] if t else ["-"] * 6
        lines.append(f"| {r['run']} | `{r['flags']}` | {r['epochs_run']} / {r['best_epoch']} | {r['valid']['f1']:.4f} | "
                     + " | ".join(cells) + f" | {r['wall_s'] / 60:.1f} min | {r['user_cpu_s'] / 60:.1f} min | "
                     f"{r['peak_rss_bytes'] / 1e9:.2f} GB |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of benchmarks/tagger_run.sh")
    parser.add_argument("--final", nargs="*", default=None, help="the runs (seeds) of the final recipe (default: "
                        "those the JSON names)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    collected = [collect(f) for f in args.runs if (f / "model" / "history.json").is_file()]
    rows = merged(collected, args.out)
    if args.final is None:
        args.final = json.loads(args.out.read_text())["final_recipe"]["runs"] if args.out.is_file() else []
    final = [r for r in rows if r["run"] in args.final]
    print(table(rows))
    result = {"references_test_f1": REFERENCES, "runs": rows, "final_recipe": {"runs": args.final, **summary(final)}}
    if final:
        print(json.dumps(result["final_recipe"]))
    with atomic_file(args.out, "w") as f:
        f.write(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
