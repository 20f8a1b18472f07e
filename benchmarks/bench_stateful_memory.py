"""Peak memory of one stateful training step on one long document, as the document grows: loopynet's
step (each chunk recomputed in the backward pass, the head pooled chunk by chunk) against two baselines
in the same run: every chunk's activations kept (no recomputation), and chunks recomputed but the head
read from the whole (B, T, H) outputs (the step before the head was pooled per chunk).

A batch of 8 documents, one of T tokens (default 5,000 / 20,000 / 50,000) and seven of 200, post-padded
to T (Zipf-like random ids): memory held in proportion to batch x the longest document. --stateful
--chunk-len 100, units 64, 300-d frozen vectors, a "last" head, one forward + backward + Adam step, one
torch thread. Each variant runs in its own process, after one warm-up step on a 2-chunk batch (the
kernels' library, thread pools and buffers are loaded then, not counted); the number is the growth of
the process's peak RSS (bytes, `ru_maxrss`) over its RSS just before the measured step. Table on
stdout, JSON in results/bench_stateful_memory.json.

    .venv/bin/python benchmarks/bench_stateful_memory.py            # ~3 min
    .venv/bin/python benchmarks/bench_stateful_memory.py --tokens 5000 --cells rnn
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "bench_stateful_memory.json"
E, V, UNITS, CHUNK, BATCH, SHORT = 300, 20_000, 64, 100, 8, 200
VARIANTS = ("keep", "whole", "pooled")


def rss_bytes() -> int:
    """The current resident set size of this process (bytes), from /proc/self/statm."""
    import os

    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def batch(tokens: int):
    """(BATCH, tokens) int64 ids: row 0 a whole document, the others SHORT tokens then padding."""
    import numpy as np
    import torch

    ids = torch.from_numpy(np.minimum(np.random.default_rng(0).zipf(1.2, (BATCH, tokens)), V - 1)).long()
    ids[1:, min(SHORT, tokens // 2):] = 0
    return ids


def step(cell: str, tokens: int, variant: str) -> dict:
    """One training step in this process; returns the peak RSS growth (bytes) and the loss."""
    import torch

    from loopynet.config import ModelConfig
    from loopynet.models import recurrent_classifier
    from loopynet.models.recurrent_classifier import RecurrentClassifier

    torch.set_num_threads(1)
    if variant == "keep":  # no recomputation: every chunk's activations stay in the graph
        recurrent_classifier.recompute = lambda function, *args: function(*args)
    torch.manual_seed(0)
    table = torch.randn(V, E)
    table[0] = 0
    config = ModelConfig(cell=cell, units=UNITS, embedding_dims=E, maxlen=tokens, head="last", stateful=True,
                         chunk_len=CHUNK, dropout=0.0)
    model = RecurrentClassifier(config, table, seed=0).train()
    if variant == "whole":  # the head reads the (B, T, H) outputs of all chunks
        model.forward = lambda ids: model.head(*model.encode(ids))
    optimizer = torch.optim.Adam(model.parameters())

    def train_step(ids):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(ids), torch.ones(BATCH))
        loss.backward()
        optimizer.step()
        return loss.item()

    train_step(batch(2 * CHUNK))
    ids = batch(tokens)
    before = rss_bytes()
    loss = train_step(ids)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"cell": cell, "tokens": tokens, "variant": variant, "peak_growth_bytes": max(0, peak - before), "loss": loss}


def child(cell: str, tokens: int, variant: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--tokens", str(tokens), "--child", cell, variant], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[5_000, 20_000, 50_000])
    parser.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"])
    parser.add_argument("--child", nargs=2, metavar=("CELL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(step(args.child[0], args.tokens[0], args.child[1])))
        return
    rows = []
    print(f"{'cell':<6}{'tokens':>8}{'keep (MB)':>11}{'whole (MB)':>12}{'pooled (MB)':>13}{'pooled/keep':>13}  same loss")
    for cell in args.cells:
        for tokens in args.tokens:
            runs = {variant: child(cell, tokens, variant) for variant in VARIANTS}
            growth = {variant: runs[variant]["peak_growth_bytes"] for variant in VARIANTS}
            row = {"cell": cell, "tokens": tokens, "chunk_len": CHUNK, "units": UNITS, "embedding_dims": E,
                   "batch": BATCH, "threads": 1, **{f"{v}_peak_growth_bytes": growth[v] for v in VARIANTS},
                   "ratio_pooled_over_keep": growth["pooled"] / growth["keep"],
                   "same_loss": len({runs[v]["loss"] for v in VARIANTS}) == 1}
            rows.append(row)
            print(f"{cell:<6}{tokens:>8}{growth['keep'] / 1e6:>11.1f}{growth['whole'] / 1e6:>12.1f}"
                  f"{growth['pooled'] / 1e6:>13.1f}{row['ratio_pooled_over_keep']:>13.3f}  {row['same_loss']}")
    from loopynet.io.atomic import atomic_file

    with atomic_file(RESULTS, "w") as f:
        f.write(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
