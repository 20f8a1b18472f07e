"""One short check of loopynet on a GPU (under 10 minutes; run by benchmarks/gpu_check.sh).

    bash benchmarks/gpu_check.sh                             # on the GPU machine: installs, then runs this
    python benchmarks/gpu_check.py --device cpu --quick      # the same code on the CPU (seconds)

Needs only torch and NumPy (no ../shared data, no internet): token ids come from bench_train.py's
synthetic IMDB-like generator (Zipf word ranks, log-normal lengths, 300-d standard-normal vectors).

1. The book's network (NLP in Action 8.1.5: SimpleRNN(units) -> Dropout(0.2) -> Flatten -> Dense(1),
   RMSprop lr 1e-3, rho 0.9, eps 1e-7, batch 32, maxlen 400) at 50 and 100 units on `--device`: the
   SimpleRNN runs as its torch.nn.RNN twin (cuDNN). Reports training samples/s, and the largest
   |logit difference| of one batch against the same weights on the CPU (loopynet's C kernels).
2. One epoch of the imdb-rnn recipe's network (loopynet/presets.py: BiLSTM(64), 300-d vectors fine-tuned
   with sparse Adam, max head, Adam lr 2e-3, clip 5, batch 64) over `--docs` (2,000) synthetic reviews,
   each batch trimmed to its longest review. Reports the epoch's seconds and samples/s.

Table on stdout, JSON in benchmarks/results/gpu_check.json. Exit code 2 with one line when the device
is not available.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_train import synthetic_data  # noqa: E402

from loopynet.config import ModelConfig, TrainConfig  # noqa: E402
from loopynet.device import DeviceError, resolve_device  # noqa: E402
from loopynet.io.atomic import atomic_file  # noqa: E402
from loopynet.models.factory import build_classifier  # noqa: E402
from loopynet.presets import PRESETS  # noqa: E402

VOCAB, DIMS, MAXLEN = 55_000, 300, 400


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def book(units: int, device: torch.device, embeddings: torch.Tensor, ids: np.ndarray, labels: np.ndarray,
         steps: int) -> dict:
    """samples/s of `steps` training steps of the book's network on `device`, after 3 warm-up steps, and the
    largest |logit| difference of one batch against the CPU (eval mode, same weights)."""
    model = build_classifier(ModelConfig(units=units, maxlen=MAXLEN), embeddings, seed=0).to(device).train()
    optimizer = torch.optim.RMSprop([p for p in model.parameters() if p.requires_grad], lr=1e-3, alpha=0.9, eps=1e-7)
    batches = [(torch.from_numpy(i).to(device), torch.from_numpy(y).to(device)) for i, y in zip(ids, labels)]

    def step(n: int) -> float:
        x, y = batches[n % len(batches)]
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()  # as loopynet's training loop: one device-to-host copy per step

    for n in range(3):
        step(n)
    synchronize(device)
    start = time.perf_counter()
    for n in range(steps):
        step(n)
    synchronize(device)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        device_logits = model(batches[0][0]).cpu()
        cpu_model = build_classifier(ModelConfig(units=units, maxlen=MAXLEN), embeddings, seed=0).eval()
        cpu_model.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
        cpu_logits = cpu_model(torch.from_numpy(ids[0]))
    return {"check": f"book SimpleRNN({units})", "samples_per_second": steps * ids.shape[1] / seconds,
            "steps": steps, "seconds": seconds,
            "max_abs_logit_difference_vs_cpu": float((device_logits - cpu_logits).abs().max())}


def imdb_rnn_epoch(device: torch.device, embeddings: torch.Tensor, docs: np.ndarray, labels: np.ndarray) -> dict:
    """One epoch of the imdb-rnn recipe's network over `docs` (N, maxlen) ids on `device`."""
    flags = PRESETS["imdb-rnn"]["flags"]
    config = ModelConfig(**{k: flags[k] for k in ("cell", "units", "bidirectional", "head", "dropout",
                                                   "train_embeddings", "maxlen")})
    train = TrainConfig(lr=flags["lr"], batch_size=flags["batch_size"], clip_norm=flags["clip_norm"])
    model = build_classifier(config, embeddings, seed=0).to(device).train()
    sparse = model.sparse_parameters()
    dense = [p for p in model.parameters() if p.requires_grad and all(p is not s for s in sparse)]
    optimizers = [torch.optim.SparseAdam(sparse, lr=train.lr, eps=train.epsilon),
                  torch.optim.Adam(dense, lr=train.lr, eps=train.epsilon)]
    order = np.random.default_rng(0).permutation(len(docs))
    lengths = (docs != 0).sum(1)
    synchronize(device)
    start, total = time.perf_counter(), 0.0
    for begin in range(0, len(order), train.batch_size):
        index = order[begin : begin + train.batch_size]
        width = max(1, int(lengths[index].max()))
        x = torch.from_numpy(docs[index, :width]).to(device)
        y = torch.from_numpy(labels[index]).to(device)
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dense, train.clip_norm)
        for optimizer in optimizers:
            optimizer.step()
        total += loss.item() * len(index)
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"check": f"imdb-rnn epoch, {len(docs):,} reviews", "samples_per_second": len(docs) / seconds,
            "seconds": seconds, "mean_loss": total / len(docs)}


def environment(device: torch.device) -> dict:
    env = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device),
           "threads": torch.get_num_threads()}
    if device.type == "cuda":
        env |= {"gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version()}
    else:
        env["cpu"] = platform.processor() or platform.machine()
    return env


def table(env: dict, rows: list[dict]) -> str:
    lines = [f"device {env['device']} ({env.get('gpu') or env.get('cpu')}), torch {env['torch']}",
             f"| check | samples/s | seconds | max abs logit diff vs CPU | loss |", "|---|---|---|---|---|"]
    for r in rows:
        diff = r.get("max_abs_logit_difference_vs_cpu")
        loss = r.get("mean_loss")
        lines.append(f"| {r['check']} | {r['samples_per_second']:,.0f} | {r['seconds']:.2f} | "
                     f"{'' if diff is None else f'{diff:.2e}'} | {'' if loss is None else f'{loss:.4f}'} |")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds on a CPU): checks the script runs")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per book network (default 200; quick 2)")
    parser.add_argument("--docs", type=int, default=None, help="reviews in the imdb-rnn epoch (default 2000; quick 64)")
    parser.add_argument("--json", default=str(HERE / "results" / "gpu_check.json"))
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        device = resolve_device(args.device)
    except DeviceError as err:
        print(f"gpu_check: error: {err}", file=sys.stderr)
        return 2
    steps = args.steps or (2 if args.quick else 200)
    n_docs = args.docs or (64 if args.quick else 2000)
    vocab = 2_000 if args.quick else VOCAB
    ids, labels, vectors = synthetic_data(8, 32, MAXLEN, DIMS, vocab, 1.12, seed=0)  # (8, 32, 400)
    embeddings = torch.from_numpy(vectors)
    env = environment(device)
    rows = [book(units, device, embeddings, ids, labels, steps) for units in (50, 100)]
    docs, doc_labels, _ = synthetic_data(1, n_docs, MAXLEN, DIMS, vocab, 1.12, seed=1)
    rows.append(imdb_rnn_epoch(device, embeddings, docs[0], doc_labels[0]))
    print(table(env, rows))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as f:
        f.write((json.dumps({"environment": env, "results": rows}, indent=2) + "\n").encode())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
