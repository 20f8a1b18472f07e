"""Load test of `loopynet serve` on 127.0.0.1: a bounded load generator, with and without micro-batching.

A real server process per mode (`loopynet serve MODEL --port 0`, 1 worker, 1 torch thread, `--no-batching`
for the baseline) and --clients concurrent clients (httpx, asyncio; one connection each) that send
--requests POST /v1/predict requests in total, each of 1-5 real IMDB test reviews (seeded), then stop.
Measured: throughput (requests/s and reviews/s), latency p50/p95/p99, errors (any status but 200, a
503 included, and any transport error), lost requests (sent but never answered), the mean batch size
of the forward passes (from the access log) and the server's peak RSS (VmHWM). Client and server share
the machine's cores. Table on stdout, JSON in results/bench_serve.json.

    .venv/bin/python benchmarks/bench_serve.py --model runs/book            # 200 clients, 20,000 requests
    .venv/bin/python benchmarks/bench_serve.py --requests 5000              # trains the book's network on a slice
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "bench_serve.json"
SHARED = Path(os.environ.get("LOOPYNET_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
REPO = Path(__file__).resolve().parents[1]


def train_book_model(work: Path) -> Path:
    from loopynet import Classifier, DataConfig, TrainConfig

    clf = Classifier.train(SHARED / "aclImdb_v1_labeled.tar.gz", SHARED / "en_vectors_300d.bin.gz",
                           DataConfig(limit=2000), train_config=TrainConfig(epochs=1), progress=False,
                           log=lambda s: None)
    return clf.save(work / "book")


def test_reviews(n: int = 2000) -> list[str]:
    from loopynet.data.corpus import read_corpus

    corpus = read_corpus(SHARED / "aclImdb_v1_labeled.tar.gz", "test")
    return [corpus.texts[i] for i in np.random.default_rng(0).permutation(len(corpus))[:n]]


def start_server(model: Path, batching: bool, log: Path) -> tuple[subprocess.Popen, str]:
    args = [sys.executable, "-m", "loopynet.cli", "serve", str(model), "--port", "0", "--threads", "1"]
    process = subprocess.Popen(args + ([] if batching else ["--no-batching"]), stderr=log.open("w"),
                               stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = re.search(r"on (http://[\d.]+:\d+)", log.read_text())
        if found:
            url = found.group(1)
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    return process, url
            except httpx.TransportError:
                pass
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text()}")
        time.sleep(0.2)
    raise SystemExit("the server did not become ready in 300 s")


async def load(url: str, reviews: list[str], clients: int, requests: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    bodies = [{"texts": [reviews[i] for i in rng.integers(0, len(reviews), rng.integers(1, 6))]}
              for _ in range(requests)]
    next_index, latencies, statuses, failures, texts_answered = 0, [], {}, [], 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal next_index, texts_answered
        while next_index < requests:
            body = bodies[next_index]
            next_index += 1
            start = time.perf_counter()
            try:
                response = await http.post(f"{url}/v1/predict", json=body)
            except httpx.HTTPError as err:
                failures.append(type(err).__name__)
                continue
            latencies.append(time.perf_counter() - start)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 200 and len(response.json()["predictions"]) == len(body["texts"]):
                texts_answered += len(body["texts"])

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    errors = sum(n for status, n in statuses.items() if status != 200) + len(failures)
    return {"requests": requests, "answered": len(latencies), "lost": requests - len(latencies) - len(failures),
            "errors": errors, "statuses": {str(k): v for k, v in statuses.items()}, "transport_errors": failures[:10],
            "texts": sum(len(b["texts"]) for b in bodies), "texts_answered": texts_answered, "seconds": seconds,
            "requests_per_second": len(latencies) / seconds, "reviews_per_second": texts_answered / seconds,
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99))}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_mode(model: Path, batching: bool, reviews: list[str], args, work: Path) -> dict:
    log = work / f"server-{'batched' if batching else 'unbatched'}.log"
    process, url = start_server(model, batching, log)
    try:
        result = asyncio.run(load(url, reviews, args.clients, args.requests, args.seed))
        result["peak_rss_mb"] = peak_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(60)
    batches = [json.loads(line).get("batch_size") for line in log.read_text().splitlines() if line.startswith("{")]
    batches = [b for b in batches if b]
    result |= {"mode": "micro-batching" if batching else "one pass per request", "clients": args.clients,
               "mean_batch_size": statistics.mean(batches) if batches else None}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="classifier model folder (default: the book's network trained on 2,000 reviews)")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = Path(args.model) if args.model else train_book_model(work)
        reviews = test_reviews()
        rows = [run_mode(model, batching, reviews, args, work) for batching in (True, False)]
    print(f"{'mode':<22}{'clients':>8}{'requests':>9}{'req/s':>8}{'reviews/s':>10}{'p50 ms':>8}{'p95 ms':>8}"
          f"{'p99 ms':>8}{'errors':>7}{'lost':>5}{'batch':>7}{'peak RSS MB':>12}")
    for r in rows:
        batch = f"{r['mean_batch_size']:.1f}" if r["mean_batch_size"] else "-"
        print(f"{r['mode']:<22}{r['clients']:>8}{r['requests']:>9,}{r['requests_per_second']:>8.0f}"
              f"{r['reviews_per_second']:>10.0f}{r['p50_ms']:>8.0f}{r['p95_ms']:>8.0f}{r['p99_ms']:>8.0f}"
              f"{r['errors']:>7}{r['lost']:>5}{batch:>7}{r['peak_rss_mb']:>12.0f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows, "model": str(args.model or "book network, 2,000-review slice"),
                                   "load_average": os.getloadavg()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
