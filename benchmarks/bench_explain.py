"""Time and peak memory of `loopynet explain` and `loopynet encode` on a trained model (issue: scale and speed).

    .venv/bin/python benchmarks/bench_explain.py runs/imdb-rnn            # the preset imdb-rnn's model folder
    .venv/bin/python benchmarks/bench_explain.py runs/imdb-rnn --limit 2000   # encode a slice only (quick)

Each task runs in its own worker process (its own peak RSS: the worker's ru_maxrss), one after another,
next to a baseline measured in the same run, so the ratios hold on a busy machine:

  explain-ig        Integrated Gradients (50 steps, Captum) of one review of 400 read tokens
  explain-full      everything `explain` computes for it: IG, occlusion (400 deletions), 400 prefixes,
                    hidden states, the thought vector
  predict-one       baseline: predicting that review (one forward pass)
  encode            the thought vectors of the test split (25,000 reviews), streamed to a .parquet file
  predict-split     baseline: predicting the same split (the `evaluate` forward passes)

The split is tokenised and cached once before timing (`read_split`), so both sides read it from the cache;
imports (Captum, pyarrow) and the first forward pass (compiled kernels loading) are not timed.
Table on stdout, JSON in benchmarks/results/bench_explain.json. Also reported: the bytes a non-streamed
(documents x maxlen x units) float32 array of every hidden state would take.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED_DATA = Path(os.environ.get("LOOPYNET_SHARED_DATA", HERE.parents[1] / "shared" / "data"))
TASKS = ("predict-one", "explain-ig", "explain-full", "predict-split", "encode")


def worker(task: str, model: str, data: str, limit: int | None, threads: int) -> dict:
    """Run one task in this process; returns {"seconds", plus task facts}."""
    import numpy as np
    import torch

    from loopynet import Classifier
    from loopynet.explain.attribution import attribute
    from loopynet.explain.network import Network, document_rows
    from loopynet.tasks.classification.task import predict_logits

    torch.set_num_threads(threads)
    clf = Classifier.load(model)
    network = Network(clf.model)
    _, docs, _ = clf.read_split(data, "test", None, limit if task in ("predict-split", "encode") else None)
    facts = {}
    if task in ("predict-one", "explain-ig", "explain-full"):
        i = int(np.argmax(np.minimum(docs.lengths, clf.maxlen)))  # the first test review with maxlen read tokens
        row = docs.first_ids(i, clf.maxlen).astype(np.int64)
        text = " ".join(clf.vocab.words[t] for t in row)  # re-tokenises to the same ids (words joined by spaces)
        facts = {"review": i, "tokens": len(row)}
    import captum.attr  # noqa: F401  imports and the kernels' first load are not timed
    import pyarrow.parquet  # noqa: F401

    network.logits([docs.first_ids(0, clf.maxlen)])
    start = time.perf_counter()
    if task == "predict-one":
        network.logits([row])
    elif task == "explain-ig":
        ids, lengths = network.rnn_batch([row])
        result = attribute(network, ids, lengths, 50)
        facts |= {"steps": int(result.steps[0]), "completeness_error": float(result.delta[0]),
                  "logit_minus_baseline": float(result.logit[0] - result.baseline[0])}
    elif task == "explain-full":
        e = clf.explain([text])[0]
        facts |= {"steps": e["steps"], "read_tokens": len(e["attribution"])}
    elif task == "predict-split":
        predict_logits(clf.model, docs, clf.maxlen)
        facts = {"documents": len(docs)}
    else:
        from loopynet.explain.encode import write_vectors

        rows = document_rows(docs, clf.maxlen)
        meta = {"id": [str(j) for j in range(len(docs))], "label": [clf.class_names[int(y)] for y in docs.labels],
                "length": [len(r) for r in rows]}
        with tempfile.TemporaryDirectory() as tmp:
            info = write_vectors(Path(tmp) / "vectors.parquet", network, rows, meta, clf.class_names)
            facts = {"documents": info["documents"], "dims": info["dims"],
                     "file_bytes": (Path(tmp) / "vectors.parquet").stat().st_size,
                     "unstreamed_hidden_states_bytes": len(docs) * clf.maxlen * info["dims"] * 4}
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024} | facts


def run_worker(task: str, args) -> dict:
    """Run `task` in a child process (its peak RSS is its own: ru_maxrss of that process, in bytes)."""
    command = [sys.executable, __file__, args.model, "--worker", task, "--threads", str(args.threads), "--data", args.data]
    if args.limit:
        command += ["--limit", str(args.limit)]
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ | {"OMP_WAIT_POLICY": "PASSIVE"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model folder (e.g. runs/imdb-rnn from train --preset imdb-rnn)")
    parser.add_argument("--data", default=str(SHARED_DATA / "aclImdb_v1_labeled.tar.gz"))
    parser.add_argument("--limit", type=int, default=None, help="encode/predict only N test reviews")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", choices=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results" / "bench_explain.json"))
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.data, args.limit, args.threads)))
        return 0
    from loopynet import Classifier

    Classifier.load(args.model).read_split(args.data, "test")  # tokenise and cache the split once
    results = {}
    for task in TASKS:
        results[task] = run_worker(task, args)
        print(f"{task:<14} {results[task]['seconds']:8.2f} s   peak RSS {results[task]['peak_rss_bytes'] / 2**20:7.0f} MiB",
              file=sys.stderr)
    ratios = {"explain-ig / predict-one": results["explain-ig"]["seconds"] / results["predict-one"]["seconds"],
              "explain-full / predict-one": results["explain-full"]["seconds"] / results["predict-one"]["seconds"],
              "encode / predict-split": results["encode"]["seconds"] / results["predict-split"]["seconds"]}
    print(f"\n{'task':<14}{'seconds':>10}{'peak RSS MiB':>14}  facts")
    for task, r in results.items():
        facts = {k: v for k, v in r.items() if k not in ("seconds", "peak_rss_bytes")}
        print(f"{task:<14}{r['seconds']:>10.2f}{r['peak_rss_bytes'] / 2**20:>14.0f}  {facts}")
    for name, value in ratios.items():
        print(f"{name}: {value:.1f}x")
    import torch

    from loopynet.io.atomic import atomic_file

    report = {"model": Path(args.model).name, "threads": args.threads, "limit": args.limit, "results": results,
              "ratios": ratios, "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                             "torch": torch.__version__, "load_average": os.getloadavg()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
