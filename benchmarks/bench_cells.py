"""GRU/LSTM training speed: loopynet's RecurrentClassifier against plain torch.nn.GRU/LSTM, eager.

Same shapes on both sides: batch 32, maxlen 400, 300-d frozen vectors, H units, a "last" head, Adam;
Zipf-distributed token ids with random lengths (post-padded). The baseline is what a PyTorch user
writes: nn.Embedding.from_pretrained(freeze=True) -> nn.GRU/LSTM(batch_first) -> Linear on the
state at each review's last real token. Interleaved repeats, median samples/s, ratio loopynet /
baseline (>= 1 means loopynet is not slower). Table on stdout, JSON in results/bench_cells.json.

    .venv/bin/python benchmarks/bench_cells.py            # ~1 min
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from loopynet.config import ModelConfig
from loopynet.models.recurrent_classifier import RecurrentClassifier

RESULTS = Path(__file__).resolve().parent / "results" / "bench_cells.json"
B, T, E, V = 32, 400, 300, 45_000


class TorchBaseline(nn.Module):
    def __init__(self, cell: str, embeddings: torch.Tensor, units: int, bidirectional: bool):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(embeddings, freeze=True)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(E, units, batch_first=True, bidirectional=bidirectional)
        self.dense = nn.Linear(units * (2 if bidirectional else 1), 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embedding(ids))  # (B, T, D)
        last = (ids != 0).sum(1).clamp(min=1) - 1  # (B,)
        return self.dense(out[torch.arange(len(ids)), last]).squeeze(1)


def batch(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (B, T), labels (B,)): Zipf ids, lengths 50..T, post-padded with 0."""
    ids = np.minimum(rng.zipf(1.2, (B, T)), V - 1)
    for row, length in zip(ids, rng.integers(50, T + 1, B)):
        row[length:] = 0
    return torch.from_numpy(ids), torch.from_numpy(rng.integers(0, 2, B)).float()


def step_seconds(model: nn.Module, batches: list) -> float:
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    start = time.perf_counter()
    for ids, labels in batches:
        loss = nn.functional.binary_cross_entropy_with_logits(model(ids), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    embeddings = torch.randn(V, E)
    embeddings[0] = 0
    batches = [batch(rng) for _ in range(args.steps)]
    rows = []
    for cell in ("gru", "lstm"):
        for bidirectional in (False, True):
            config = ModelConfig(cell=cell, head="last", units=args.units, bidirectional=bidirectional, dropout=0.0)
            models = {"loopynet": RecurrentClassifier(config, embeddings),
                      "torch": TorchBaseline(cell, embeddings, args.units, bidirectional)}
            for model in models.values():
                step_seconds(model, batches[:1])  # warm-up
            times = {name: [] for name in models}
            for _ in range(args.repeats):  # interleaved
                for name, model in models.items():
                    times[name].append(step_seconds(model, batches))
            ratios = [t / l for l, t in zip(times["loopynet"], times["torch"])]
            rows.append({"cell": cell, "bidirectional": bidirectional, "units": args.units,
                         "loopynet_samples_per_second": B / statistics.median(times["loopynet"]),
                         "torch_samples_per_second": B / statistics.median(times["torch"]),
                         "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)})
            r = rows[-1]
            print(f"{cell:<5} {'bi' if bidirectional else 'uni':<3} loopynet {r['loopynet_samples_per_second']:7.0f}/s  "
                  f"torch {r['torch_samples_per_second']:7.0f}/s  ratio {r['ratio_median']:.2f} "
                  f"[{r['ratio_min']:.2f}, {r['ratio_max']:.2f}]", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
