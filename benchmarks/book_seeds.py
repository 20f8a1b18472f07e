"""The chapter's model over several seeds: the book's data pipeline against loopynet's default one.

Same model and training for both (SimpleRNN(50) -> Dropout(0.2) -> Flatten -> Dense(1, sigmoid),
RMSprop, batch 32, 2 epochs; NLP in Action 8.2-8.3); only the data pipeline differs:

* book:    Treebank tokens of the raw text, vectors as stored (`loopynet train --preset book`);
* default: `<br />` removed, trailing periods split off, Treebank quotes mapped, vectors post-processed
  (all-but-the-top, unit norm) and weighted by smooth inverse frequency (`--word-weights sif`).

A seed sets the shuffle, the 20,000 / 5,000 split, the initial weights and dropout, so each seed also
has its own validation part. For each run: val_accuracy per epoch, accuracy on the 25,000 test
reviews, and P(pos) of the chapter's `sample_1` (the book's model labels it negative).
Prints a table and writes benchmarks/results/book_seeds.json.

    .venv/bin/python benchmarks/book_seeds.py --seeds 0 1 2 3 4      # ~25 s per run on 2 cores
    .venv/bin/python benchmarks/book_seeds.py --seeds 0 1 2 --threads 1 --out benchmarks/results/book_seeds_v2.json
    .venv/bin/python benchmarks/book_seeds.py --seeds 5 6 7 8 9 --threads 1 --add \
        --out benchmarks/results/book_seeds_v2.json

`--add` merges the new runs into the --out file's (a run of the same pipeline and seed is replaced; its
other keys, e.g. a "note", are kept) and summarises all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from loopynet import Classifier
from loopynet.config import BOOK_DATA, DataConfig, TrainConfig

DATA = Path(os.environ.get("LOOPYNET_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
RESULTS = Path(__file__).resolve().parent / "results" / "book_seeds.json"
SAMPLE_1 = ("I hate that the dismal weather had me down for so long, when will it break! Ugh, when does happiness "
            "return? The sun is blinding and the puffy clouds are too thin. I can't wait for the weekend.")
PIPELINES = {"book": DataConfig(**BOOK_DATA), "default": DataConfig()}


def run(pipeline: str, seed: int) -> dict:
    imdb, vectors = DATA / "aclImdb_v1_labeled.tar.gz", DATA / "en_vectors_300d.bin.gz"
    clf = Classifier.train(imdb, vectors, PIPELINES[pipeline], train_config=TrainConfig(seed=seed), progress=False,
                           log=lambda line: None)
    return {"pipeline": pipeline, "seed": seed, "val_accuracy": [h["val_accuracy"] for h in clf.history],
            "test_accuracy": clf.evaluate(imdb, "test")["accuracy"],
            "sample_1_probability": float(clf.predict_proba([SAMPLE_1])[0]),
            "oov_rate": clf.data_report["train"]["oov_rate"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own count)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default: {RESULTS})")
    parser.add_argument("--add", action="store_true", help="merge the runs into the --out file's and summarise all")
    args = parser.parse_args()
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    print(f"{'pipeline':8} {'seed':>4} {'val_acc 1':>9} {'val_acc 2':>9} {'test_acc':>8} {'P(pos|s1)':>9} {'OOV':>6}")
    rows = []
    for seed in args.seeds:
        for pipeline in PIPELINES:
            r = run(pipeline, seed)
            rows.append(r)
            print(f"{r['pipeline']:8} {r['seed']:4d} {r['val_accuracy'][0]:9.4f} {r['val_accuracy'][-1]:9.4f} "
                  f"{r['test_accuracy']:8.4f} {r['sample_1_probability']:9.3f} {r['oov_rate']:6.2%}", flush=True)
    results = merged(json.loads(args.out.read_text()) if args.add and args.out.is_file() else {}, rows)
    results["threads"] = args.threads
    from loopynet.io.atomic import atomic_file

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.out, "w") as f:
        f.write(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


def merged(results: dict, rows: list[dict]) -> dict:
    """`results` (a results file's JSON, or {}) with `rows` added: a run of the same pipeline and seed is
    replaced, runs are ordered by pipeline and seed, the summary is recomputed; other keys are kept."""
    new = {(r["pipeline"], r["seed"]) for r in rows}
    runs = sorted([r for r in results.get("runs", []) if (r["pipeline"], r["seed"]) not in new] + rows,
                  key=lambda r: (list(PIPELINES).index(r["pipeline"]), r["seed"]))
    return results | {"runs": runs, "summary": summarise(runs)}


def summarise(rows: list[dict]) -> dict:
    """Per pipeline: mean val and test accuracy, runs with val >= 0.75, runs calling sample_1 negative; printed."""
    summary = {}
    for pipeline in PIPELINES:
        mine = [r for r in rows if r["pipeline"] == pipeline]
        val, test = [r["val_accuracy"][-1] for r in mine], [r["test_accuracy"] for r in mine]
        summary[pipeline] = {"val_accuracy_mean": statistics.mean(val), "test_accuracy_mean": statistics.mean(test),
                             "val_at_least_0.75": sum(v >= 0.75 for v in val),
                             "sample_1_negative": sum(r["sample_1_probability"] < 0.5 for r in mine), "runs": len(mine)}
        print(f"{pipeline:8} mean  val_acc {summary[pipeline]['val_accuracy_mean']:.4f}  test_acc "
              f"{summary[pipeline]['test_accuracy_mean']:.4f}  val >= 0.75: {summary[pipeline]['val_at_least_0.75']}"
              f"/{len(mine)}  sample_1 negative: {summary[pipeline]['sample_1_negative']}/{len(mine)} "
              f"(seeds {', '.join(str(r['seed']) for r in mine)})")
    return summary


if __name__ == "__main__":
    main()
