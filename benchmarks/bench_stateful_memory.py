"""Peak memory of one stateful training step on one long document: chunks recomputed in the backward
pass (loopynet's `recompute`) against the plain graph that keeps every chunk's activations.

A batch of 8 documents, one of T tokens (default 20,000) and seven of 200, post-padded to T (Zipf-like
random ids): memory held in proportion to batch x the longest document. --stateful --chunk-len 100,
units 64, 300-d frozen vectors, a "last" head, one forward + backward + Adam step. Each variant runs
in its own process; the number is the growth of the process's peak RSS (bytes, `ru_maxrss`) over its
RSS just before the step, so the vectors and the interpreter are not counted. Table on stdout, JSON
in results/bench_stateful_memory.json.

    .venv/bin/python benchmarks/bench_stateful_memory.py            # ~1 min
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


def rss_bytes() -> int:
    """The current resident set size of this process (bytes), from /proc/self/statm."""
    import os

    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def step(cell: str, tokens: int, variant: str) -> dict:
    """One training step in this process; returns the peak RSS growth (bytes) and the loss."""
    import numpy as np
    import torch

    from loopynet.config import ModelConfig
    from loopynet.models import recurrent_classifier
    from loopynet.models.recurrent_classifier import RecurrentClassifier

    if variant == "keep":  # the graph before recomputation: every chunk's activations kept
        recurrent_classifier.recompute = lambda function, *args: function(*args)
    torch.manual_seed(0)
    table = torch.randn(V, E)
    table[0] = 0
    config = ModelConfig(cell=cell, units=UNITS, embedding_dims=E, maxlen=tokens, head="last", stateful=True,
                         chunk_len=CHUNK, dropout=0.0)
    model = RecurrentClassifier(config, table, seed=0).train()
    optimizer = torch.optim.Adam(model.parameters())
    ids = torch.from_numpy(np.minimum(np.random.default_rng(0).zipf(1.2, (BATCH, tokens)), V - 1)).long()
    ids[1:, SHORT:] = 0
    before = rss_bytes()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(ids), torch.ones(BATCH))
    loss.backward()
    optimizer.step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"cell": cell, "tokens": tokens, "variant": variant, "peak_growth_bytes": max(0, peak - before),
            "loss": loss.item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"])
    parser.add_argument("--child", nargs=2, metavar=("CELL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(step(args.child[0], args.tokens, args.child[1])))
        return
    rows = []
    print(f"{'cell':<6}{'tokens':>8}{'keep (MB)':>12}{'recompute (MB)':>16}{'ratio':>8}  same loss")
    for cell in args.cells:
        runs = {variant: json.loads(subprocess.run([sys.executable, __file__, "--tokens", str(args.tokens),
                                                    "--child", cell, variant], check=True, capture_output=True,
                                                   text=True).stdout)
                for variant in ("keep", "recompute")}
        keep, recompute = (runs[v]["peak_growth_bytes"] for v in ("keep", "recompute"))
        row = {"cell": cell, "tokens": args.tokens, "chunk_len": CHUNK, "units": UNITS, "embedding_dims": E, "batch": BATCH,
               "keep_peak_growth_bytes": keep, "recompute_peak_growth_bytes": recompute,
               "ratio_recompute_over_keep": recompute / keep, "same_loss": runs["keep"]["loss"] == runs["recompute"]["loss"]}
        rows.append(row)
        print(f"{cell:<6}{args.tokens:>8}{keep / 1e6:>12.1f}{recompute / 1e6:>16.1f}{row['ratio_recompute_over_keep']:>8.3f}"
              f"  {row['same_loss']}")
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
