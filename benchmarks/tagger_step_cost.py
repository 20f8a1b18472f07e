"""CPU cost of one tagger training step by part (issue 19): forward + backward, gradient clipping, the Adam
step and the weight average (`torch.optim.swa_utils.AveragedModel`, EMA 0.999), for the recipe's 50-d table
and the 350-d table of GloVe 50-d ++ 300-d vectors, all variants in one process (ratios, not absolute speeds).

Variants: the frozen word table as a frozen *parameter* (before issue 19's change: the weight average, which
averages every parameter, frozen ones too, read and wrote the whole table after every batch) or as a buffer
(`loopynet.models.tagger.frozen_embedding`, now); and for 350-d, the trained correction on all 350 dimensions
or on the GloVe 50 only (`--train-embeddings-dims 50`). Table sizes are the real ones (38,527 rows; 82,970 for the
first concatenation, 81,405 today; 21,000 corrected rows); batches are random ids, 32 sentences x 15 tokens x 10 characters, one thread.

    .venv/bin/python benchmarks/tagger_step_cost.py            # prints the table, writes results/tagger_step_cost.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from loopynet.config import TaggerConfig
from loopynet.io.atomic import atomic_file
from loopynet.models.tagger import SequenceTagger
from loopynet.train.loop import warmed_up_ema

RESULTS = Path(__file__).resolve().parent / "results" / "tagger_step_cost.json"
PARTS = ("forward_backward", "clip", "adam", "average")
# name, table rows, dims, corrected dims (0 = all), frozen table as a parameter (the code before issue 19)
VARIANTS = [("50-d, table a parameter (before)", 38527, 50, 0, True), ("50-d, table a buffer (now)", 38527, 50, 0, False),
            ("350-d, table a parameter, correction 350 (before)", 82970, 350, 0, True),
            ("350-d, table a buffer, correction 350", 82970, 350, 0, False),
            ("350-d, table a buffer, correction 50 (--train-embeddings-dims 50)", 82970, 350, 50, False)]


def model_for(rows: int, dims: int, trained_dims: int, table_parameter: bool) -> SequenceTagger:
    config = TaggerConfig(vocab_size=rows, embedding_dims=dims, num_chars=80, num_tags=17, finetune_words=21000,
                          train_embeddings_dims=trained_dims)
    model = SequenceTagger(config, torch.randn(rows, dims, generator=torch.Generator().manual_seed(0)))
    model.delta_rows.copy_(torch.randint(0, 21001, (rows,), generator=torch.Generator().manual_seed(1)))
    if table_parameter:  # nn.Embedding.from_pretrained(freeze=True), as the tagger built it before
        table = model.embedding.weight
        del model.embedding.weight
        model.embedding.weight = nn.Parameter(table, requires_grad=False)
    return model


def step_cost(model: SequenceTagger, steps: int, warmup: int = 3) -> dict:
    """Mean CPU seconds (process time) per training step, by part."""
    gen = torch.Generator().manual_seed(2)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3, eps=1e-7)
    averaged = AveragedModel(model, avg_fn=warmed_up_ema(0.999))
    total = dict.fromkeys(PARTS, 0.0)
    B, T, L, V = 32, 15, 10, model.config.vocab_size
    for i in range(warmup + steps):
        words, cases = torch.randint(2, V, (B, T), generator=gen), torch.randint(1, 9, (B, T), generator=gen)
        chars, tags = torch.randint(1, 80, (B, T, L), generator=gen), torch.randint(0, 17, (B, T), generator=gen)
        lengths = torch.full((B,), T)
        marks = [time.process_time()]
        optimizer.zero_grad()
        model.loss_from_emissions(model(words, cases, chars, lengths), tags, lengths).backward()
        marks.append(time.process_time())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        marks.append(time.process_time())
        optimizer.step()
        marks.append(time.process_time())
        averaged.update_parameters(model)
        marks.append(time.process_time())
        if i >= warmup:
            for part, a, b in zip(PARTS, marks, marks[1:]):
                total[part] += b - a
    return {part: seconds / steps for part, seconds in total.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, vocab, dims, trained, parameter in VARIANTS:
        cost = step_cost(model_for(vocab, dims, trained, parameter), args.steps)
        rows.append({"variant": name, "ms_per_step": {k: round(v * 1000, 2) for k, v in cost.items()},
                     "total_ms": round(sum(cost.values()) * 1000, 2)})
    base = rows[1]["total_ms"]
    print("| variant | " + " | ".join(PARTS) + " | total ms | x the 50-d step (now) |\n" + "|---" * (len(PARTS) + 3) + "|")
    for r in rows:
        r["ratio_to_50d_now"] = round(r["total_ms"] / base, 2)
        print(f"| {r['variant']} | " + " | ".join(f"{r['ms_per_step'][p]:.1f}" for p in PARTS)
              + f" | {r['total_ms']:.1f} | {r['ratio_to_50d_now']:.2f} |")
    with atomic_file(args.out, "w") as f:
        f.write(json.dumps({"steps": args.steps, "threads": 1, "batch": "32 x 15 tokens x 10 chars", "rows": rows},
                           indent=1) + "\n")


if __name__ == "__main__":
    main()
