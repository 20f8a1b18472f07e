"""GRU/LSTM training speed: loopynet's networks on the fused C recurrences against the same networks written
the obvious way with torch.nn.LSTM / torch.nn.GRU, eager, in the same run.

Shapes (one training step = forward, loss, zero_grad, backward, clip, optimizer step, loss.item()):
- imdb-rnn: `--preset imdb-rnn`'s network: 300-d vectors fine-tuned (sparse gradients, SparseAdam +
  Adam lr 2e-3, clip-norm 5), bidirectional LSTM(64) (or GRU with --cell gru), dropout 0.3, max over
  the real positions, Dense(1); batch 64, length-bucketed batches trimmed to their longest review
  (BucketedTask), IMDB-like synthetic ids (bench_train.synthetic_data's calibration: Zipf 1.12 over
  55,000 ranks, log-normal lengths median 192, capped at maxlen 400).
  Contenders: `loopynet` (RecurrentClassifier, C kernels), `torch-packed` (nn.Embedding(sparse=True)
  -> nn.LSTM over pack_padded_sequence: the same model), `torch-padded` (the same without packing: its
  backward direction reads the padding first, a slightly different model, but what many write).
- tagger: `loopynet tag train`'s network (SequenceTagger defaults: 50-d vectors + casing(8) + char-CNN(50),
  BiLSTM(200), dropout 0.5, CRF), batch 32, CoNLL-like sentence lengths (log-normal, median 12,
  capped at 124), batches sorted by length in chunks as TaggingTask does; Adam lr 1e-3, clip 5.
  Contenders: `loopynet` (fused C path) and `torch-packed` (the same model with LOOPYNET_KERNEL=torch: the
  packed torch.nn.LSTM it used before, i.e. the obvious way).

Method: every contender is built from the same seed, warmed up, then timed in interleaved repeats (order
rotating); samples/s is the median over repeats; the ratio is loopynet / the fastest baseline, as the
median (min-max) of the per-repeat ratios. Threads: torch's default (nothing forced).
Table on stdout, JSON in results/bench_cells.json.

Peer cross-check (imdb-rnn shape, wall clock): the independent plain script ../shared/peers/anchor_lstm_train.py
runs right after in its own process (environment as it is), and its network (dropout after the max) is timed
here on its kind of batches (64 x 400, unbucketed) as `torch-padded (anchor's network)`: the two numbers should
agree; loopynet's own network (dropout before the max, more work) on the same batches is set against the script.

    .venv/bin/python benchmarks/bench_cells.py             # ~3 min on 2 idle cores
    .venv/bin/python benchmarks/bench_cells.py --threads 1 --clock thread   # CPU seconds: for a busy machine
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench_train import SHARED_DATA, synthetic_data
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from loopynet.config import ModelConfig, TaggerConfig, TrainConfig
from loopynet.models.recurrent_classifier import RecurrentClassifier
from loopynet.models.tagger import SequenceTagger
from loopynet.presets import PRESETS
from loopynet.train.loop import make_optimizer

RESULTS = Path(__file__).resolve().parent / "results" / "bench_cells.json"
IMDB = PRESETS["imdb-rnn"]["flags"]


# --- imdb-rnn shape ---------------------------------------------------------------------------------------


def imdb_batches(n: int, seed: int = 0) -> tuple[list, torch.Tensor]:
    """n length-bucketed batches (ids (B, T_batch), labels (B,)) of imdb-rnn's shape and the (V, 300) table."""
    B, maxlen = IMDB["batch_size"], IMDB["maxlen"]
    ids, labels, table = synthetic_data(1, n * B, maxlen, 300, 55_000, 1.12, seed)
    ids, labels = ids[0], labels[0]
    order = np.argsort(-(ids != 0).sum(1), kind="stable")  # one pool, sorted by length (BucketedTask)
    batches = []
    for start in range(0, n * B, B):
        index = order[start:start + B]
        T = max(int((ids[index] != 0).sum(1).max()), 1)
        batches.append((torch.from_numpy(ids[index, :T].copy()), torch.from_numpy(labels[index])))
    return batches, torch.from_numpy(table)


class ObviousClassifier(nn.Module):
    """imdb-rnn's network written with torch.nn: Embedding(sparse) -> [packed] bidirectional LSTM/GRU ->
    dropout -> max over real positions -> Linear; with `dropout_after_pool` the dropout comes after the max, on
    (B, 2H) (the network of ../shared/peers/anchor_lstm_train.py, a cheaper one than loopynet's)."""

    def __init__(self, cell: str, table: torch.Tensor, packed: bool, dropout_after_pool: bool = False):
        super().__init__()
        self.packed, self.dropout_after_pool = packed, dropout_after_pool
        self.embedding = nn.Embedding.from_pretrained(table.clone(), freeze=False, sparse=True, padding_idx=0)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(table.shape[1], IMDB["units"], batch_first=True,
                                                          bidirectional=True)
        self.dropout = nn.Dropout(IMDB["dropout"])
        self.dense = nn.Linear(2 * IMDB["units"], 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        lengths = (ids != 0).sum(1)
        x = self.embedding(ids)
        if self.packed:
            packed = pack_padded_sequence(x, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
            out, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=ids.shape[1])
        else:
            out, _ = self.rnn(x)
        mask = (torch.arange(ids.shape[1]) < lengths.unsqueeze(1)).unsqueeze(2)
        if self.dropout_after_pool:
            return self.dense(self.dropout(out.masked_fill(~mask, float("-inf")).amax(1))).squeeze(1)
        return self.dense(self.dropout(out).masked_fill(~mask, float("-inf")).amax(1)).squeeze(1)


def imdb_contenders(cell: str, table: torch.Tensor, baselines: list[str]) -> dict:
    """name -> step(batch) -> loss, for loopynet and the chosen baselines."""
    config = ModelConfig(cell=cell, units=IMDB["units"], bidirectional=True, head="max", dropout=IMDB["dropout"],
                         train_embeddings=True, maxlen=IMDB["maxlen"], embedding_dims=table.shape[1])
    train = TrainConfig(optimizer="adam", lr=IMDB["lr"])
    torch.manual_seed(0)
    models = {"loopynet": RecurrentClassifier(config, table, seed=0)}
    models.update({name: ObviousClassifier(cell, table, packed=name == "torch-packed") for name in baselines})
    return {name: _binary_step(model, make_optimizer(model, train) if name == "loopynet" else _obvious_optimizer(model))
            for name, model in models.items()}


def _obvious_optimizer(model: ObviousClassifier):
    from loopynet.train.loop import SparseAndDense

    dense = [p for name, p in model.named_parameters() if not name.startswith("embedding")]
    return SparseAndDense(torch.optim.SparseAdam([model.embedding.weight], lr=IMDB["lr"]),
                          torch.optim.Adam(dense, lr=IMDB["lr"]))


def _binary_step(model: nn.Module, optimizer):
    dense = [p for name, p in model.named_parameters() if "embedding" not in name]
    model.train()

    def step(batch) -> float:
        ids, labels = batch
        loss = F.binary_cross_entropy_with_logits(model(ids), labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dense, IMDB["clip_norm"])
        optimizer.step()
        return loss.item()

    return step


def anchor_check(repeats: int, peers: Path) -> dict:
    """The imdb-rnn shape cross-checked with the independent plain script ../shared/peers/anchor_lstm_train.py,
    run right after in its own process with the environment as it is (nothing forced but our thread count):
    its network (dropout after the max) and batches (64 x 400, unbucketed) timed here too, as `torch-padded
    (anchor's network)`, whose samples/s should agree with the script's; and loopynet's own network on the same
    unbucketed batches, against the script's number."""
    script = peers / "anchor_lstm_train.py"
    if not script.exists():
        return {"skipped": f"{script} not found (--peers)"}
    threads = torch.get_num_threads()
    command = [sys.executable, str(script), "--threads", str(threads), "--repeats", str(repeats)]
    run = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ), timeout=1800, check=False)
    record = next((json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")), None)
    if record is None:
        return {"command": " ".join(command[1:]), "error": (run.stderr or run.stdout)[-2000:]}
    ids, labels, table = synthetic_data(4, IMDB["batch_size"], IMDB["maxlen"], 300, 55_000, 1.12, 1)
    batches = [(torch.from_numpy(i), torch.from_numpy(y)) for i, y in zip(ids, labels)] * 2  # 8 steps a repeat
    steps = imdb_contenders("lstm", torch.from_numpy(table), [])
    torch.manual_seed(0)
    anchor_net = ObviousClassifier("lstm", torch.from_numpy(table), packed=False, dropout_after_pool=True)
    steps["torch-padded (anchor's network)"] = _binary_step(anchor_net, _obvious_optimizer(anchor_net))
    row = compare("imdb-rnn, 64 x 400 unbucketed", steps, batches, sum(len(b[1]) for b in batches), repeats)
    theirs = record["samples_per_s"]
    ours = row["samples_per_second"]
    shown = [os.path.relpath(script, Path(__file__).resolve().parents[1]), *command[2:]]  # no machine paths
    check = {"command": " ".join(shown), "script_samples_per_s": theirs, "row": row,
             "ours_over_script": ours["torch-padded (anchor's network)"] / theirs,
             "loopynet_over_script": ours["loopynet"] / theirs}
    print(f"  peer cross-check: {script.name} {theirs:.1f}/s; ours (anchor's network) / script "
          f"{check['ours_over_script']:.2f}; loopynet (its own network) / script {check['loopynet_over_script']:.2f}",
          flush=True)
    return check


# --- tagger shape -----------------------------------------------------------------------------------------


def tagger_batches(n: int, config: TaggerConfig, seed: int = 0) -> list:
    """n batches (words, cases, chars, lengths, tags) of 32 CoNLL-like sentences, sorted by length in chunks."""
    rng = np.random.default_rng(seed)
    B, L = 32, 12
    lengths = np.sort(np.clip(np.exp(rng.normal(np.log(12), 0.7, n * B)).astype(int), 1, 124))
    batches = []
    for i in rng.permutation(n):
        lens = torch.from_numpy(lengths[i * B:(i + 1) * B].copy())
        T = int(lens.max())
        mask = torch.arange(T) < lens.unsqueeze(1)
        words = torch.from_numpy(rng.integers(2, config.vocab_size, (B, T))) * mask
        cases = torch.from_numpy(rng.integers(1, 10, (B, T))) * mask
        chars = torch.from_numpy(rng.integers(1, config.num_chars, (B, T, L))) * mask.unsqueeze(2)
        tags = torch.from_numpy(rng.integers(0, config.num_tags, (B, T))) * mask
        batches.append((words, cases, chars, lens, tags))
    return batches


def tagger_contenders() -> tuple[dict, TaggerConfig]:
    config = TaggerConfig(vocab_size=20_000, embedding_dims=50, num_chars=80, num_tags=17)
    table = torch.randn(config.vocab_size, config.embedding_dims)

    def build():
        model = SequenceTagger(config, table, seed=0)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

        def step(batch) -> float:
            words, cases, chars, lengths, tags = batch
            loss = model.loss_from_emissions(model(words, cases, chars, lengths), tags, lengths)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            return loss.item()

        return step

    return {"loopynet": build(), "torch-packed": _with_env(build(), "torch")}, config


def _with_env(step, kernel: str):
    """step run with LOOPYNET_KERNEL=kernel (the pure-torch fallback of the same model)."""

    def wrapped(batch):
        old = os.environ.get("LOOPYNET_KERNEL")
        os.environ["LOOPYNET_KERNEL"] = kernel
        try:
            return step(batch)
        finally:
            if old is None:
                del os.environ["LOOPYNET_KERNEL"]
            else:
                os.environ["LOOPYNET_KERNEL"] = old

    return wrapped


# --- timing ------------------------------------------------------------------------------------------------


CLOCK = time.perf_counter  # --clock thread: time.thread_time (CPU seconds of the calling thread)


def seconds(step, batches) -> float:
    start = CLOCK()
    for batch in batches:
        step(batch)
    return CLOCK() - start


def compare(shape: str, steps: dict, batches: list, samples: int, repeats: int) -> dict:
    """Interleaved repeats; samples/s per contender and loopynet / best-baseline ratios."""
    for step in steps.values():
        seconds(step, batches[:2])  # warm-up (kernel build, buffer pool, allocator)
    times = {name: [] for name in steps}
    names = list(steps)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(seconds(steps[name], batches))
    rate = {name: samples / statistics.median(t) for name, t in times.items()}
    best = max((n for n in names if n != "loopynet"), key=rate.get)
    ratios = [b / l for l, b in zip(times["loopynet"], times[best])]
    row = {"shape": shape, "samples_per_second": rate, "best_baseline": best,
           "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
           "seconds": times, "samples_per_repeat": samples}
    print(f"{shape:<14} " + "  ".join(f"{n} {rate[n]:7.1f}/s" for n in names)
          + f"  | loopynet / {best}: {row['ratio_median']:.2f} [{row['ratio_min']:.2f}, {row['ratio_max']:.2f}]",
          flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["imdb-rnn", "imdb-rnn-gru", "tagger"],
                        choices=["imdb-rnn", "imdb-rnn-gru", "tagger"])
    parser.add_argument("--batches", type=int, default=6, help="batches per timed repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baselines", nargs="+", default=["torch-packed", "torch-padded"],
                        help="imdb-rnn baselines to run (torch-packed is ~8x slower than torch-padded)")
    parser.add_argument("--threads", type=int, help="torch threads (and the kernels'); default: torch's own")
    parser.add_argument("--peers", type=Path, default=SHARED_DATA.parent / "peers",
                        help="folder of the independent plain scripts (anchor_lstm_train.py)")
    parser.add_argument("--clock", choices=["wall", "thread"], default="wall",
                        help="thread: CPU seconds of the main thread, robust on a loaded machine (needs --threads 1)")
    args = parser.parse_args()
    if args.clock == "thread" and args.threads != 1:
        parser.error("--clock thread measures one thread: add --threads 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    global CLOCK
    CLOCK = time.thread_time if args.clock == "thread" else time.perf_counter
    rows = []
    for shape in args.shapes:
        if shape.startswith("imdb-rnn"):
            batches, table = imdb_batches(args.batches)
            steps = imdb_contenders("gru" if shape.endswith("gru") else "lstm", table, args.baselines)
            samples = sum(len(b[1]) for b in batches)
        else:
            steps, config = tagger_contenders()
            batches = tagger_batches(args.batches * 4, config)
            samples = sum(len(b[3]) for b in batches)
        rows.append(compare(shape, steps, batches, samples, args.repeats))
    result = {"threads": torch.get_num_threads(), "clock": args.clock, "torch": torch.__version__, "machine": platform.processor(),
              "load_average_at_end": os.getloadavg(), "rows": rows}
    if "imdb-rnn" in args.shapes and args.clock == "wall":  # the script measures wall time
        result["peer_check"] = anchor_check(args.repeats, args.peers)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
