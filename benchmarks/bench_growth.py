"""Growth with the corpus: tokenisation time, training time per epoch and peak RSS at 25k, 100k and 400k
documents.

    python benchmarks/bench_growth.py                       # 25k, 100k, 400k (long: see --sizes)
    python benchmarks/bench_growth.py --sizes 25000 100000  # what a loaded 2-core machine can afford
    python benchmarks/bench_growth.py --sizes 2000 4000 --extrapolate  # a minute: checks the script

The corpus of each size is made by resampling IMDB's 25,000 training reviews with replacement (seeded),
written as one uncompressed aclImdb-shaped archive (`train/<class>/<i>_<rating>.txt`, read in place by
loopynet). Per size, each in its own process with a fresh $LOOPYNET_HOME:
  1. tokenise: `load_tokenized` (Treebank, loopynet's default clean-ups) on every core, writing the token
     cache; wall time and the process' peak RSS;
  2. train: `python -m loopynet.cli train --epochs 1` (the book's network, default data options) from that
     warm cache; the epoch's seconds (history.json) and the process' peak RSS (VmHWM, via wait4).
Sizes given with --extrapolate but not measured are projected linearly from the measured ones and
labelled "not measured". Table on stdout, JSON in benchmarks/results/bench_growth.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED_DATA = Path(os.environ.get("LOOPYNET_SHARED_DATA", HERE.parents[1] / "shared" / "data"))

TOKENIZE = """
import json, sys, time
from loopynet.data.prepare import tokenizer_options
from loopynet.config import DataConfig
from loopynet.data.tokenized import load_tokenized
from loopynet.home import cache_dir
start = time.perf_counter()
corpus = load_tokenized(sys.argv[1], "train", "strict", cache_dir(), tokenizer_options(DataConfig()))
print(json.dumps({"seconds": time.perf_counter() - start, "documents": len(corpus)}))
"""


def make_corpus(documents: int, out: Path, source: Path, seed: int = 0) -> Path:
    """An uncompressed tar of `documents` IMDB training reviews drawn with replacement; returns its path."""
    from loopynet.data.corpus import read_corpus

    imdb = read_corpus(source, "train")
    picks = np.random.default_rng(seed).integers(0, len(imdb), documents)
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for i, j in enumerate(picks):
            data = imdb.texts[j].encode("utf-8")
            member = tarfile.TarInfo(f"train/{imdb.class_names[imdb.labels[j]]}/{i}_{Path(imdb.paths[j]).stem.split('_')[-1]}.txt")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return out


def run_measured(command: list[str], env: dict) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak RSS in bytes) of `command` in a child process.

    Raises:
        RuntimeError: the command failed (its stderr's end is in the message).
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(command[:4])} ... failed: {stderr[-2000:]}")
    return stdout, seconds, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def measure(documents: int, work: Path, args) -> dict:
    corpus = make_corpus(documents, work / f"imdb-{documents}.tar", Path(args.data), seed=args.seed)
    env = {**os.environ, "LOOPYNET_HOME": str(work / f"home-{documents}"), "OMP_WAIT_POLICY": "PASSIVE"}
    stdout, _, tokenize_rss = run_measured([sys.executable, "-c", TOKENIZE, str(corpus)], env)
    tokenized = json.loads(stdout.strip().splitlines()[-1])
    out = work / f"model-{documents}"
    command = [sys.executable, "-m", "loopynet.cli", "train", "--data", str(corpus), "--vectors", args.vectors,
               "--out", str(out), "--epochs", "1", "--quiet", "--device", "cpu", "--threads", str(args.threads)]
    _, train_wall, train_rss = run_measured(command, env)
    epoch = json.loads((out / "history.json").read_text())[0]
    return {"documents": documents, "measured": True, "tokenize_seconds": tokenized["seconds"],
            "tokenize_documents_per_second": documents / tokenized["seconds"], "tokenize_peak_rss_bytes": tokenize_rss,
            "epoch_seconds": epoch["seconds"], "train_samples_per_second": epoch["samples_per_second"],
            "train_process_seconds": train_wall, "train_peak_rss_bytes": train_rss,
            "cache_bytes": sum(f.stat().st_size for f in (work / f"home-{documents}").rglob("*") if f.is_file())}


def extrapolate(rows: list[dict], documents: int) -> dict:
    """A linear fit (least squares over two or more measured sizes) of each time and RSS, at `documents`."""
    x = np.array([r["documents"] for r in rows], dtype=float)
    row = {"documents": documents, "measured": False}
    for key in ("tokenize_seconds", "epoch_seconds", "train_process_seconds", "tokenize_peak_rss_bytes",
                "train_peak_rss_bytes", "cache_bytes"):
        slope, intercept = np.polyfit(x, [r[key] for r in rows], 1)
        row[key] = float(slope * documents + intercept)
    row["tokenize_documents_per_second"] = documents / row["tokenize_seconds"]
    row["train_samples_per_second"] = documents * 0.8 / row["epoch_seconds"]
    return row


def table(rows: list[dict]) -> str:
    lines = ["| documents | tokenise s | docs/s | tokenise peak RSS | epoch s | train samples/s | train peak RSS | "
             "token cache | |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gb = lambda key: f"{r[key] / 1e9:.2f} GB"  # noqa: E731
        lines.append(f"| {r['documents']:,} | {r['tokenize_seconds']:.0f} | {r['tokenize_documents_per_second']:,.0f} | "
                     f"{gb('tokenize_peak_rss_bytes')} | {r['epoch_seconds']:.0f} | {r['train_samples_per_second']:,.0f} | "
                     f"{gb('train_peak_rss_bytes')} | {r['cache_bytes'] / 1e6:,.0f} MB | "
                     f"{'measured' if r['measured'] else 'not measured (linear fit)'} |")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000, 100_000, 400_000])
    parser.add_argument("--extrapolate", type=int, nargs="*", default=[400_000],
                        help="sizes to project linearly when not measured (default 400000)")
    parser.add_argument("--data", default=str(SHARED_DATA / "aclImdb_v1_labeled.tar.gz"))
    parser.add_argument("--vectors", default=str(SHARED_DATA / "en_vectors_300d.bin.gz"))
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training runs (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=None, help="scratch folder, kept (corpora, token caches, models: e.g. "
                        "to profile a run); default: a temporary one, removed")
    parser.add_argument("--json", default=str(HERE / "results" / "bench_growth.json"))
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from loopynet.io.atomic import atomic_file

    with contextlib.ExitStack() as stack:
        work = Path(args.work) if args.work else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="growth-")))
        work.mkdir(parents=True, exist_ok=True)
        rows = []
        for documents in args.sizes:
            rows.append(measure(documents, work, args))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    if len(rows) > 1:
        rows += [extrapolate(rows, n) for n in args.extrapolate if n not in args.sizes]
    print(table(rows))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.json) as f:
        f.write((json.dumps({"cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "rows": rows}, indent=2)
                 + "\n").encode())
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
