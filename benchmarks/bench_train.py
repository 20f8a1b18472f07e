"""Training speed of the book's network (NLP in Action 8.1.5): loopynet against its peers, each at the
settings its users get by default and at its best documented knob.

    python benchmarks/bench_train.py --quick          # a few minutes: 50 units, short repeats
    python benchmarks/bench_train.py                  # 50 and 100 units
    python benchmarks/bench_train.py --real           # IMDB batches through loopynet's data pipeline

Configuration: batch 32, maxlen 400, 300-d frozen word vectors, SimpleRNN(units) -> Dropout(0.2) ->
Flatten -> Dense(1, sigmoid), binary cross-entropy, RMSprop(lr 1e-3, rho 0.9, eps 1e-7).

Contenders, one worker process per peer (own peak RSS, Keras its own backend), each with its variants
(VARIANTS; the first is the peer's default):
  loopynet         BookClassifier on the compiled kernels (models/kernel.c)
  loopynet-torch   the same with LOOPYNET_KERNEL=torch (the pure-PyTorch fallback; not a baseline)
  torch-nn-rnn     the obvious PyTorch: nn.Embedding.from_pretrained(freeze=True) -> nn.RNN(tanh,
                   batch_first) -> nn.Dropout -> Flatten -> nn.Linear; eager, on one thread, torch.compile
  keras-BACKEND    Keras 3 Sequential exactly as the chapter on pre-vectorised (B, T, E) batches (the
                   chapter's input; the lookup is not timed): model.fit, train_on_batch, jit_compile=True

Nothing is forced on a worker: it inherits the parent's environment (OMP_WAIT_POLICY included, unless
--omp-wait-policy says otherwise) and each framework's default thread count (unless --threads); where the
parent leaves OMP_WAIT_POLICY unset, loopynet's workers run with what loopynet's CLI chooses then
(loopynet/omp_policy.py: PASSIVE where its compiled kernels run), as its users get it. The
workers are started and warmed up, then every (peer, variant) is timed one at a time in interleaved
repeats (the order rotates), so all see the same machine load. A training step is forward, loss,
zero_grad, backward, optimizer step (plus `loss.item()`, as loopynet's training loop does).

Reports samples/s (median, min, max over repeats), the ratio loopynet / contender (median of the
per-repeat ratios, with their min and max), peak RSS per worker, each peer's default and best variant;
then the same peers measured by the independent plain scripts in ../shared/peers (cross-check), a
per-phase breakdown of one loopynet step with its roofline (FLOPs, GFLOP/s, the sgemm peak measured in
the same run), an ablation and a loss-agreement check (loopynet vs the torch baseline and vs its own
fallback, from the same weights, dropout 0). Table on stdout, JSON in benchmarks/results/bench_train.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

SHARED_DATA = Path(os.environ.get("LOOPYNET_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

import numpy as np
from roofline import format_roofline, phase_flops, roofline, sgemm_peak

from loopynet.models.kernel_sources import kernels_expected
from loopynet.omp_policy import choose_wait_policy

HERE = Path(__file__).resolve().parent
KERAS_BACKENDS = ("jax", "tensorflow", "torch")
BACKEND_MODULE = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}


# --- data --------------------------------------------------------------------------------------------


def synthetic_data(n_batches: int, batch: int, maxlen: int, dims: int, vocab: int, zipf: float, seed: int = 0):
    """Token ids drawn from a Zipf law over `vocab` word ranks, in documents of IMDB-like length.

    Calibrated on IMDB's training split through loopynet's pipeline (book OOV policy, 300-d vectors):
    vocabulary 55,074 words; in-vocabulary lengths median 192, mean 259, 16% over 400; a batch of
    32 x 400 holds ~1,930 distinct ids and 44% padding. Here: log-normal lengths (median 192, sigma
    0.77) capped at maxlen, the padding id 0 past the end (as pad_trunc), Zipf exponent 1.12 over
    55,000 ranks (~1,950 distinct ids a batch). Word vectors are standard normal, row 0 is zero.
    Returns (ids (N, B, T) int64, labels (N, B) float32, embeddings (V, E) float32).
    """
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, vocab)
    p = 1.0 / ranks**zipf
    ids = rng.choice(ranks, size=(n_batches, batch, maxlen), p=p / p.sum())
    lengths = np.minimum(np.exp(rng.normal(np.log(192), 0.77, (n_batches, batch))).astype(int), maxlen)
    ids[np.arange(maxlen) >= lengths[..., None]] = 0
    labels = rng.integers(0, 2, (n_batches, batch)).astype(np.float32)
    embeddings = rng.standard_normal((vocab, dims), dtype=np.float32)
    embeddings[0] = 0.0
    return ids, labels, embeddings


def real_data(n_batches: int, batch: int, maxlen: int, data: str, vectors: str, seed: int = 0):
    """IMDB training batches through loopynet's pipeline (Treebank tokens, book OOV policy, pad_trunc)."""
    from loopynet.data.batching import batches
    from loopynet.data.tokenized import load_tokenized
    from loopynet.data.vectors import load_vectors
    from loopynet.data.vocab import build_vocabulary, encode
    from loopynet.home import cache_dir

    corpus = load_tokenized(data, "train", "strict", cache_dir())
    vocab, matrix = build_vocabulary(corpus, load_vectors(vectors), "drop")
    docs, _ = encode(corpus, vocab)
    order = np.random.default_rng(seed).permutation(len(docs))[: n_batches * batch]
    pairs = list(batches(docs, batch, maxlen, order))
    ids = np.stack([p[0] for p in pairs])
    labels = np.stack([p[1] for p in pairs]).astype(np.float32)
    return ids, labels, np.ascontiguousarray(matrix, dtype=np.float32)


# --- the contenders (run inside worker processes) ------------------------------------------------------


def torch_step_fn(name: str, units: int, dropout: float, embeddings, maxlen: int, seed: int = 0,
                  compile: bool = False):
    """(model, step(ids, y) -> loss float) for a PyTorch contender; `compile`: the step calls
    `torch.compile(model)` (default mode)."""
    import torch
    import torch.nn.functional as F

    model = build_torch_model(name, units, dropout, torch.from_numpy(embeddings), maxlen, seed)
    model.train()
    opt = torch.optim.RMSprop([p for p in model.parameters() if p.requires_grad], lr=1e-3, alpha=0.9, eps=1e-7)
    forward = torch.compile(model) if compile else model
    update = optimizer_update(name, opt)

    def step(ids, y):
        loss = F.binary_cross_entropy_with_logits(forward(ids), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        update()
        return loss.item()

    return model, step


def optimizer_update(name: str, opt):
    """The optimizer step as each contender's training loop makes it: loopynet's loop
    (`loopynet.train.loop.optimizer_step`: small steps on one thread), torch's users `opt.step()`."""
    if not name.startswith("loopynet"):
        return opt.step
    from loopynet.train.loop import optimizer_step, steps_on_one_thread

    one_thread = steps_on_one_thread(opt)
    return lambda: optimizer_step(opt, one_thread)


def build_torch_model(name: str, units: int, dropout: float, embeddings, maxlen: int, seed: int = 0):
    """loopynet's BookClassifier ('loopynet', 'loopynet-torch') or the obvious nn.RNN model ('torch-nn-rnn')."""
    import torch
    from torch import nn

    from loopynet.config import ModelConfig
    from loopynet.models.classifier import BookClassifier

    if name.startswith("loopynet"):
        config = ModelConfig(units=units, dropout=dropout, embedding_dims=embeddings.shape[1], maxlen=maxlen)
        return BookClassifier(config, embeddings, seed=seed)

    class ObviousRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding.from_pretrained(embeddings, freeze=True)
            self.rnn = nn.RNN(embeddings.shape[1], units, nonlinearity="tanh", batch_first=True)
            self.dropout = nn.Dropout(dropout)
            self.dense = nn.Linear(maxlen * units, 1)

        def forward(self, ids):
            h, _ = self.rnn(self.embed(ids))  # (B, T, H)
            return self.dense(self.dropout(h).flatten(1)).squeeze(1)  # (B,)

    torch.manual_seed(seed)
    return ObviousRNN()


# Each peer's settings ("variants"), all timed in one worker process per peer. The first is what its users
# get by default (the chapter's `model.fit` for Keras, the plain eager model for PyTorch); the others are
# its documented speed knobs. Nothing else is set in a worker's environment (see worker_env).
VARIANTS = {
    "loopynet": ("default",),
    "loopynet-torch": ("default",),
    "torch-nn-rnn": ("default", "threads=1", "compile"),  # compile: torch.compile(model), default mode
    "keras-tensorflow": ("fit", "train_on_batch", "fit+jit", "train_on_batch+jit"),  # +jit: jit_compile=True
    "keras-jax": ("fit", "train_on_batch"),  # JAX always compiles with XLA (jit_compile "auto" is True)
    "keras-torch": ("fit", "train_on_batch"),
}
SLOW_VARIANTS = {"compile"}  # minutes to compile on a busy 2-core machine: not in --quick


def keras_runners(variants, units: int, dropout: float, embeddings, ids, labels, threads: int | None):
    """{variant: fit(n) -> loss} for the chapter's Keras model on pre-vectorised batches, and n_max.

    `fit` variants call `model.fit(x, y, batch_size)` over n batches (the chapter's call), `train_on_batch`
    ones call `model.train_on_batch` n times; `+jit` compiles the model with `jit_compile=True` (XLA), the
    others with Keras' default `jit_compile="auto"`. One model per compile setting. Threads are set only
    when `threads` is given (TensorFlow: intra- and inter-op pools; torch: set_num_threads).
    """
    import keras
    from keras import layers

    backend = keras.backend.backend()
    if threads and backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    elif threads and backend == "torch":
        import torch

        torch.set_num_threads(threads)

    batch, maxlen = ids.shape[1], ids.shape[2]
    x = embeddings[ids.reshape(-1, maxlen)]  # (N*B, T, E): the chapter feeds vectors, not ids
    y = labels.reshape(-1)

    def build(jit):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((maxlen, embeddings.shape[1])),
            layers.SimpleRNN(units, return_sequences=True),
            layers.Dropout(dropout),
            layers.Flatten(),
            layers.Dense(1, activation="sigmoid"),
        ])
        model.compile("rmsprop", "binary_crossentropy", metrics=["accuracy"], jit_compile=jit)
        return model

    models = {jit: build(jit) for jit in {True if v.endswith("+jit") else "auto" for v in variants}}

    def runner(variant):
        model = models[True if variant.endswith("+jit") else "auto"]
        if variant.startswith("fit"):
            def fit(n):
                history = model.fit(x[: n * batch], y[: n * batch], batch_size=batch, epochs=1, verbose=0,
                                    shuffle=False)
                return float(history.history["loss"][-1])
        else:
            def fit(n):
                for k in range(n):
                    logs = model.train_on_batch(x[(k % len(ids)) * batch: (k % len(ids) + 1) * batch],
                                                y[(k % len(ids)) * batch: (k % len(ids) + 1) * batch])
                return float(logs[0] if isinstance(logs, (list, tuple)) else logs)
        return fit

    return {v: runner(v) for v in variants}, ids.shape[0]


def torch_runners(name: str, variants, units: int, dropout: float, embeddings, ids, labels, threads: int | None):
    """{variant: fit(n) -> loss} for a PyTorch contender. `threads=1` runs on one thread; `compile` trains
    `torch.compile(model)` (default mode, compiled during the warm-up); others use the process' thread
    count (torch's default unless `threads` is given)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    default_threads = torch.get_num_threads()
    batches = [(torch.from_numpy(i), torch.from_numpy(y)) for i, y in zip(ids, labels)]

    def runner(variant):
        _, step = torch_step_fn(name, units, dropout, embeddings, ids.shape[2], compile=variant == "compile")
        count = 1 if variant == "threads=1" else default_threads

        def fit(n):
            torch.set_num_threads(count)
            for k in range(n):
                loss = step(*batches[k % len(batches)])
            return loss

        return fit

    return {v: runner(v) for v in variants}, None


def worker(args) -> None:
    """Serve 'run VARIANT N' / 'rss' / 'quit' lines on stdin with one JSON line each on the real stdout.

    The first line says the worker is ready: per variant the steps that fill one repeat, and the
    worker's OMP_WAIT_POLICY and thread count as it sees them (what the parent's environment gave it).
    """
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints of the frameworks go to stderr, not into the protocol
    data = np.load(Path(args.data_dir) / "data.npz")
    ids, labels, embeddings = data["ids"], data["labels"], data["embeddings"]
    name, variants = args.worker, args.variants.split(",")
    if name.startswith("keras-"):
        runners, n_max = keras_runners(variants, args.units[0], args.dropout, embeddings, ids, labels, args.threads)
    else:
        runners, n_max = torch_runners(name, variants, args.units[0], args.dropout, embeddings, ids, labels,
                                       args.threads)
    environment = worker_report()  # before a variant changes the thread count
    steps = {}
    for variant, fit in runners.items():
        fit(args.warmup)
        start = time.perf_counter()
        fit(2)
        steps[variant] = max(1, int(args.target_seconds / ((time.perf_counter() - start) / 2)))
        steps[variant] = min(steps[variant], n_max) if n_max else steps[variant]
    print(json.dumps({"ready": True, "steps": steps, "environment": environment}), file=out)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "run":
            start, cpu = time.perf_counter(), time.process_time()
            loss = runners[command[1]](int(command[2]))
            print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
                              "loss": loss}), file=out)
        elif command[0] == "rss":
            print(json.dumps({"peak_rss_mb": peak_rss_mb()}), file=out)
        else:
            break


def worker_report() -> dict:
    """What a worker runs under: its OMP_WAIT_POLICY (None: unset, the OpenMP runtime's default) and, when
    torch is loaded, its thread count."""
    report = {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
    if "torch" in sys.modules:
        report["torch_threads"] = sys.modules["torch"].get_num_threads()
    return report


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB: VmHWM (Linux; ru_maxrss would include the peak
    of the parent that forked it), else ru_maxrss."""
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)


def worker_env(name: str, policy: str, threads: int | None, base: dict | None = None) -> dict:
    """The environment of a contender's worker: the parent's (`base`, default os.environ) as its users
    would have it, plus only what the benchmark must choose: the Keras backend, LOOPYNET_KERNEL=torch for
    the fallback, OMP_WAIT_POLICY when `policy` is not 'inherit', and XLA's one-thread flags when everyone
    is asked to run on one thread. With 'inherit', loopynet's workers get what its CLI chooses when the
    variable is unset (loopynet/omp_policy.py: PASSIVE where its compiled kernels run), the peers nothing."""
    env = dict(os.environ if base is None else base)
    if name == "loopynet-torch":
        env["LOOPYNET_KERNEL"] = "torch"
    if policy != "inherit":
        env["OMP_WAIT_POLICY"] = policy.upper()
    elif name.startswith("loopynet"):
        choose_wait_policy(env, compiled_kernels=kernels_expected("cpu", env))
    if name.startswith("keras-"):
        env["KERAS_BACKEND"] = name.split("-", 1)[1]
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # log noise only
        if name == "keras-jax" and threads == 1:  # XLA's CPU thread pool: one thread, else its default
            flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flags).strip()
    return env


class Worker:
    """A peer's worker process (all its variants): started at once, talked to over pipes."""

    def __init__(self, name: str, variants, units: int, args, data_dir: str, log):
        command = [sys.executable, __file__, "--worker", name, "--variants", ",".join(variants),
                   "--data-dir", data_dir, "--units", str(units), "--warmup", str(args.warmup),
                   "--dropout", str(args.dropout), "--target-seconds", str(args.target_seconds)]
        if args.threads:
            command += ["--threads", str(args.threads)]
        self.name, self.variants = name, list(variants)
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                     env=worker_env(name, args.omp_wait_policy, args.threads))
        self.steps: dict[str, int] = {}
        self.environment: dict = {}
        self.seconds: dict[str, list[float]] = {v: [] for v in self.variants}
        self.cpu_seconds: dict[str, list[float]] = {v: [] for v in self.variants}

    def ready(self) -> bool:
        reply = self._read()
        if reply:
            self.steps, self.environment = reply["steps"], reply["environment"]
        return bool(reply)

    def run(self, variant: str) -> None:
        """Time one repeat of `variant`."""
        self.proc.stdin.write(f"run {variant} {self.steps[variant]}\n")
        self.proc.stdin.flush()
        reply = self._read()
        self.seconds[variant].append(reply["seconds"])
        self.cpu_seconds[variant].append(reply["cpu_seconds"])

    def close(self) -> float:
        """Stop the worker; returns its peak RSS in MiB."""
        self.proc.stdin.write("rss\n")
        self.proc.stdin.flush()
        rss = self._read()["peak_rss_mb"]
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # e.g. torch.compile's worker pool shutting down on a busy machine
            self.proc.kill()
        return rss

    def _read(self):
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None


# --- measurements in the main process ------------------------------------------------------------------


def project(model, kernels, x):
    """BookClassifier's input projection spelled out: distinct ids -> TokenProjection; a (T, B, H)."""
    from loopynet.models.simple_rnn import TokenProjection

    B, T = x.shape
    table, rnn = model.embeddings, model.rnn
    tokens, where = kernels.unique_ids(x.t().reshape(T * B).contiguous(), table.shape[0])
    return TokenProjection.apply(tokens, where, rnn.kernel, rnn.bias, table, kernels).view(T, B, -1)


def breakdown(units: int, dropout: float, embeddings, ids, labels, threads: int, steps: int,
              wall: bool = False) -> dict:
    """Median milliseconds of each phase of a loopynet training step on the compiled path: thread CPU
    time on one thread (robust to other processes), wall time with more or with `wall`.

    The step is the model's own (`BookClassifier.forward` -> `CompiledBookNetwork`, one autograd node),
    timed at the phase ends that node reports (`classifier.phase_hook`) and after the loss and the
    optimizer step; zero_grad and the distinct ids count in the first phase, the dropout mask and the head's
    sums in "recurrence fwd" (the kernel sums the logits in the time loop), the loss's backward in "head bwd".
    """
    import torch
    import torch.nn.functional as F

    from loopynet.models import classifier, fast_kernel

    torch.set_num_threads(threads)
    if fast_kernel.kernels() is None:
        return {"skipped": "compiled kernels unavailable"}
    model, _ = torch_step_fn("loopynet", units, dropout, embeddings, ids.shape[2])
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    update = optimizer_update("loopynet", opt)
    phases: dict[str, list[float]] = {}
    clock, clock_fn = {}, time.thread_time if threads == 1 and not wall else time.perf_counter

    def mark(name):
        now = clock_fn()
        phases.setdefault(name, []).append(now - clock["t"])
        clock["t"] = now

    classifier.phase_hook = mark
    try:
        for k in range(steps + 3):
            x, y = torch.from_numpy(ids[k % len(ids)]), torch.from_numpy(labels[k % len(ids)])
            clock["t"] = clock_fn()
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss = F.binary_cross_entropy_with_logits(logits, y)
            loss.item()
            mark("head fwd (dropout+dense) + loss")
            loss.backward()
            update()
            mark("optimizer step")
    finally:
        classifier.phase_hook = None
    result = {name: 1e3 * statistics.median(times[3:]) for name, times in phases.items()}
    result["total"] = sum(result.values())
    result["clock"] = "thread CPU time" if clock_fn is time.thread_time else "wall time"
    result["the model's own path (CompiledBookNetwork)"] = logits.grad_fn.name() == "CompiledBookNetworkBackward"
    return result


def ablation(units: int, dropout: float, embeddings, ids, labels, steps: int, repeats: int) -> dict:
    """CPU milliseconds of a training step, on one thread, with one part of the fast path at a time put
    back to plain PyTorch: what each part gains. Thread CPU time, so other processes on the machine
    distort it far less than wall time. Variants (all else as loopynet's fast path):
      fast path                    BookClassifier.forward
      per-position projection      embeddings[ids] (B, T, E) then SimpleRNN.forward (x @ kernel, MKL)
      eager dropout + dense head   F.dropout on (B, T, H), reshape to (B, T*H), addmm
      PyTorch recurrence loop      SimpleRecurrence (the fallback's Python loop over T)
    """
    import torch
    import torch.nn.functional as F

    from loopynet.models import fast_kernel
    from loopynet.models.classifier import dropout_dense
    from loopynet.models.recurrence import SimpleRecurrence, simple_recurrence

    torch.set_num_threads(1)
    kernels = fast_kernel.kernels()
    if kernels is None:
        return {"skipped": "compiled kernels unavailable"}
    model, _ = torch_step_fn("loopynet", units, dropout, embeddings, ids.shape[2])
    rnn = model.rnn

    def head(h):  # h (T, B, H) -> logits (B,)
        return dropout_dense(h, model.dense_kernel, model.dense_bias, dropout)

    def per_position(x):
        out, _ = rnn(model.embeddings[x])
        return head(out.transpose(0, 1))

    def eager_head(x):
        out = simple_recurrence(project(model, kernels, x), rnn.recurrent_kernel).transpose(0, 1)  # (B, T, H)
        flat = F.dropout(out, dropout, True).reshape(x.shape[0], -1)  # (B, T*H)
        return torch.addmm(model.dense_bias, flat, model.dense_kernel).squeeze(1)

    def torch_loop(x):
        a = project(model, kernels, x)
        return head(SimpleRecurrence.apply(a, rnn.recurrent_kernel, a.new_zeros(a.shape[1:])))

    variants = {"fast path": model, "per-position projection": per_position,
                "eager dropout + dense head": eager_head, "PyTorch recurrence loop": torch_loop}
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for rep in range(repeats + 1):
        for name, forward in variants.items():
            n = max(1, steps // 10) if name == "PyTorch recurrence loop" else steps
            start = time.thread_time()
            for k in range(n):
                loss = F.binary_cross_entropy_with_logits(forward(torch.from_numpy(ids[k % len(ids)])),
                                                          torch.from_numpy(labels[k % len(ids)]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if rep:  # the first round warms up
                times[name].append(1e3 * (time.thread_time() - start) / n)
    fast = statistics.median(times["fast path"])
    return {name: {"cpu_ms_per_step": statistics.median(t), "vs_fast_path": statistics.median(t) / fast}
            for name, t in times.items()}


def loss_agreement(units: int, embeddings, ids, labels, steps: int, dtype: str) -> dict:
    """Losses of K RMSprop steps from the same weights with dropout 0, in float32 or float64: loopynet
    (compiled), loopynet (pure torch) and the torch baseline (weights copied in, its second bias frozen
    at zero). RMSprop's first steps move each weight by ~lr * sign(gradient), so float32 rounding of
    near-zero gradients makes runs drift apart within a few steps; float64 shows the math is the same."""
    import torch
    import torch.nn.functional as F

    emb = torch.from_numpy(embeddings)
    losses = {}
    for name in ("loopynet", "loopynet-torch", "torch-nn-rnn"):
        os.environ.pop("LOOPYNET_KERNEL", None)
        if name == "loopynet-torch":
            os.environ["LOOPYNET_KERNEL"] = "torch"
        reference = build_torch_model("loopynet", units, 0.0, emb, ids.shape[2], seed=1)
        model = build_torch_model(name, units, 0.0, emb, ids.shape[2], seed=1)
        if name == "torch-nn-rnn":
            copy_weights(reference, model)
        model.to(getattr(torch, dtype))  # float32 vectors convert exactly
        opt = torch.optim.RMSprop([p for p in model.parameters() if p.requires_grad], lr=1e-3, alpha=0.9, eps=1e-7)
        losses[name] = []
        for k in range(steps):
            y = torch.from_numpy(labels[k % len(ids)]).to(getattr(torch, dtype))
            loss = F.binary_cross_entropy_with_logits(model(torch.from_numpy(ids[k % len(ids)])), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses[name].append(loss.item())
    os.environ.pop("LOOPYNET_KERNEL", None)
    diff = {other: [abs(a - b) for a, b in zip(losses["loopynet"], losses[other])]
            for other in ("loopynet-torch", "torch-nn-rnn")}
    return {"dtype": dtype, "steps": steps, "losses": losses, "abs_loss_difference_per_step": diff,
            "max_abs_loss_difference": {k: max(v) for k, v in diff.items()}}


def copy_weights(book, obvious) -> None:
    """BookClassifier weights (Keras layout) into the nn.RNN model; its bias_hh is zeroed and frozen."""
    import torch

    with torch.no_grad():
        obvious.rnn.weight_ih_l0.copy_(book.rnn.kernel.t())
        obvious.rnn.weight_hh_l0.copy_(book.rnn.recurrent_kernel.t())
        obvious.rnn.bias_ih_l0.copy_(book.rnn.bias)
        obvious.rnn.bias_hh_l0.zero_()
        obvious.dense.weight.copy_(book.dense_kernel.t())
        obvious.dense.bias.copy_(book.dense_bias)
    obvious.rnn.bias_hh_l0.requires_grad_(False)


# --- orchestration -------------------------------------------------------------------------------------


def contenders(skip_keras: bool, quick: bool, skip: tuple[str, ...] = ()) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """({peer: variants}, notes): the PyTorch contenders and one Keras contender per installed backend (but
    the seconds-per-step keras-torch only without --quick); --quick also leaves out slow variants; peers
    named in `skip` are left out."""
    peers, notes = {}, []
    names = ["loopynet", "loopynet-torch", "torch-nn-rnn"]
    if skip_keras:
        notes.append("Keras baselines skipped (--skip-keras)")
    elif importlib.util.find_spec("keras") is None:
        notes.append("Keras baselines skipped: keras is not installed (pip install -e '.[bench]')")
    else:
        for backend in KERAS_BACKENDS:
            if importlib.util.find_spec(BACKEND_MODULE[backend]) is None:
                notes.append(f"keras-{backend} skipped: {BACKEND_MODULE[backend]} is not installed")
            elif backend == "torch" and quick:
                notes.append("keras-torch skipped in --quick (seconds per step: eager Python loop over T)")
            else:
                names.append(f"keras-{backend}")
    notes += [f"{name} skipped (--skip-peers)" for name in names if name in skip]
    for name in (n for n in names if n not in skip):
        peers[name] = tuple(v for v in VARIANTS[name] if not (quick and v in SLOW_VARIANTS))
    if quick:
        notes.append("torch-nn-rnn compile skipped in --quick (minutes to compile)")
    notes.append("keras-torch +jit (torch.compile of the 400-step loop) not measured: minutes to compile")
    return peers, notes


def measure(units: int, peers: dict[str, tuple[str, ...]], args, data_dir: str, batch: int) -> dict:
    """Start one worker per peer, time interleaved repeats of every (peer, variant), and summarise them."""
    with open(Path(data_dir) / f"workers-{units}.log", "w") as log:
        workers = [Worker(name, variants, units, args, data_dir, log) for name, variants in peers.items()]
        ready = [w for w in workers if w.ready()]
        failed = [w.name for w in workers if w not in ready]
        slots = [(w, v) for w in ready for v in w.variants]
        for rep in range(args.repeats):
            for w, v in slots[rep % len(slots):] + slots[: rep % len(slots)]:
                w.run(v)
            print(f"  units {units}: repeat {rep + 1}/{args.repeats} done, load average {os.getloadavg()[0]:.1f}",
                  file=sys.stderr, flush=True)
        rss = {w.name: w.close() for w in ready}
        for w in workers:
            if w not in ready:
                w.proc.kill()
    log_tail = (Path(data_dir) / f"workers-{units}.log").read_text(errors="replace")[-3000:] if failed else ""
    rows = {}
    for w, v in slots:
        sps = [w.steps[v] * batch / s for s in w.seconds[v]]
        rows[f"{w.name} {v}"] = {
            "peer": w.name, "variant": v, "samples_per_s": sps, "median": statistics.median(sps), "min": min(sps),
            "max": max(sps), "ms_per_step": 1e3 * statistics.median(w.seconds[v]) / w.steps[v],
            "steps_per_repeat": w.steps[v], "cpu_ms_per_step": 1e3 * statistics.median(w.cpu_seconds[v]) / w.steps[v],
            "peak_rss_mb": rss[w.name], "worker_environment": w.environment}
    summarise(rows)
    return {"rows": rows, "failed_to_start": failed, "failure_log_tail": log_tail, "best": best_of_peers(rows)}


def summarise(rows: dict) -> None:
    """Add to every row the ratio loopynet (default) / this row: median, min, max of the per-repeat ratios."""
    mine = rows.get("loopynet default", {}).get("samples_per_s")
    for row in rows.values():
        if mine:
            ratios = [a / b for a, b in zip(mine, row["samples_per_s"])]
            row["ratio_loopynet_over_this"] = {"median": statistics.median(ratios), "min": min(ratios),
                                               "max": max(ratios)}


def best_of_peers(rows: dict) -> dict:
    """Per baseline peer (not loopynet's own paths): its default variant, its fastest variant (median
    samples/s) and loopynet's ratio to that fastest one; and the best baseline overall (smallest ratio)."""
    if "loopynet default" not in rows:
        return {}
    peers = {}
    for name, row in rows.items():
        if row["peer"].startswith("loopynet"):
            continue
        peer = peers.setdefault(row["peer"], {"default": None, "best": None})
        if peers[row["peer"]]["default"] is None:  # VARIANTS lists the default first
            peer["default"] = {"variant": row["variant"], "samples_per_s": row["median"]}
        if peer["best"] is None or row["median"] > peer["best"]["samples_per_s"]:
            peer["best"] = {"variant": row["variant"], "samples_per_s": row["median"],
                            "loopynet_over_this": row["ratio_loopynet_over_this"]}
    overall = min(peers, key=lambda p: peers[p]["best"]["loopynet_over_this"]["median"]) if peers else None
    return {"peers": peers, "best_baseline": overall,
            "ratio": peers[overall]["best"]["loopynet_over_this"] if overall else None}


def table(units: int, result: dict) -> str:
    header = (f"{'contender':<36}{'samples/s':>10}{'min':>9}{'max':>9}{'ms/step':>9}{'loopynet x':>12}"
              f"{'(min-max)':>14}{'CPU ms/step':>13}{'peak RSS MiB':>14}")
    lines = [f"units={units}", header]
    for name, row in sorted(result["rows"].items(), key=lambda kv: -kv[1]["median"]):
        r = row.get("ratio_loopynet_over_this", {})
        ratio = f"{r['median']:.2f}" if r else "-"
        spread = f"({r['min']:.2f}-{r['max']:.2f})" if r else ""
        lines.append(f"{name:<36}{row['median']:>10.0f}{row['min']:>9.0f}{row['max']:>9.0f}"
                     f"{row['ms_per_step']:>9.2f}{ratio:>12}{spread:>14}{row['cpu_ms_per_step']:>13.2f}"
                     f"{row['peak_rss_mb']:>14.0f}")
    envs = {f"{row['peer']}": row["worker_environment"] for row in result["rows"].values()}
    lines.append("workers' environment: " + "; ".join(f"{p} {e}" for p, e in envs.items()))
    best = result["best"]
    for peer, b in best.get("peers", {}).items():
        lines.append(f"{peer:<18} default ({b['default']['variant']}) {b['default']['samples_per_s']:.0f}, best "
                     f"({b['best']['variant']}) {b['best']['samples_per_s']:.0f} samples/s: loopynet is "
                     f"{b['best']['loopynet_over_this']['median']:.2f}x its best")
    if best.get("best_baseline"):
        r = best["ratio"]
        lines.append(f"best baseline: {best['best_baseline']} at its best setting; loopynet is {r['median']:.2f}x "
                     f"({r['min']:.2f}-{r['max']:.2f}) its samples/s (median of the per-repeat ratios)")
    if result["failed_to_start"]:
        lines.append(f"failed to start: {', '.join(result['failed_to_start'])}; their log ends:\n"
                     f"{result['failure_log_tail']}")
    return "\n".join(lines)


# The independent plain scripts (../shared/peers/anchor_rnn_train.py): its impl and number -> our row.
ANCHOR = {("torch-nn", "samples_per_s"): "torch-nn-rnn default",
          ("keras-tf", "samples_per_s"): "keras-tensorflow train_on_batch",
          ("keras-tf", "fit_samples_per_s"): "keras-tensorflow fit",
          ("keras-jax", "samples_per_s"): "keras-jax train_on_batch",
          ("keras-jax", "fit_samples_per_s"): "keras-jax fit"}


def anchor_check(units: int, rows: dict, args) -> dict:
    """Run the independent peer script for `units` right after our repeats (same machine, same
    environment as our workers) and compare its samples/s with our rows for the same peer and call."""
    script = Path(args.peers) / "anchor_rnn_train.py"
    if not script.exists():
        return {"skipped": f"{script} not found (--peers)"}
    impls = sorted({impl for impl, _ in ANCHOR if impl == "torch-nn" or any(
        r["peer"] == {"keras-tf": "keras-tensorflow", "keras-jax": "keras-jax"}[impl] for r in rows.values())})
    command = [sys.executable, str(script), "--impl", ",".join(impls), "--units", str(units), "--json-only",
               "--batches", str(args.batches), "--repeats", str(min(args.repeats, 3)), "--fit-repeats", "2"]
    run = subprocess.run(command, capture_output=True, text=True, env=worker_env("anchor", args.omp_wait_policy,
                         args.threads), timeout=3600, check=False)
    results = {}
    for line in run.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            results[record.get("impl")] = record
    pairs = []
    for (impl, key), ours in ANCHOR.items():
        theirs = results.get(impl, {}).get(key)
        if theirs and ours in rows:
            pairs.append({"anchor": f"{impl} {key}", "anchor_samples_per_s": theirs, "ours": ours,
                          "ours_samples_per_s": rows[ours]["median"], "ours_over_anchor": rows[ours]["median"] / theirs})
    errors = {impl: r["error"] for impl, r in results.items() if "error" in r}
    return {"command": " ".join(command[1:]), "pairs": pairs, "errors": errors,
            "load_average": os.getloadavg()[0]}


def format_anchor(check: dict) -> str:
    if "skipped" in check:
        return f"peer cross-check skipped: {check['skipped']}"
    lines = [f"peer cross-check: the independent plain script ({check['command']}), load average "
             f"{check['load_average']:.1f}:"]
    for p in check["pairs"]:
        lines.append(f"  {p['anchor']:<30}{p['anchor_samples_per_s']:>8.0f}   ours: {p['ours']:<34}"
                     f"{p['ours_samples_per_s']:>8.0f}   ours / script {p['ours_over_anchor']:.2f}")
    for impl, error in check["errors"].items():
        lines.append(f"  {impl}: {error}")
    return "\n".join(lines)


def environment(threads: int | None) -> dict:
    import torch

    info = {"python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "threads": threads or f"default ({torch.get_num_threads()})",
            "torch": torch.__version__}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                           if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    for dist in ("keras", "tensorflow-cpu", "tensorflow", "jax", "jaxlib"):
        try:
            info[dist] = version(dist)  # from metadata: importing Keras here would load TensorFlow
        except PackageNotFoundError:
            pass
    info["load_average_at_start"] = os.getloadavg()
    info["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "(unset)")
    return info


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes: 50 units, 3 repeats of 0.4 s, no "
                        "keras-torch, no torch.compile")
    parser.add_argument("--units", type=int, nargs="+", default=None, help="units to run (default 50 100; quick 50)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--maxlen", type=int, default=400)
    parser.add_argument("--dims", type=int, default=300)
    parser.add_argument("--vocab", type=int, default=55_000, help="synthetic vocabulary size (IMDB: 55,074)")
    parser.add_argument("--zipf", type=float, default=1.12, help="synthetic Zipf exponent (1.12: ~1,950 distinct ids a "
                        "batch, as IMDB)")
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--batches", type=int, default=None, help="distinct batches (default 16; quick 8)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved timed repeats (default 5; quick 3)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per worker first (then 2 to calibrate)")
    parser.add_argument("--target-seconds", type=float, default=None, help="length of one repeat (default 2; quick 0.4)")
    parser.add_argument("--threads", type=int, default=None, help="force this thread count on every contender "
                        "(default: each framework's own default)")
    parser.add_argument("--omp-wait-policy", choices=["inherit", "passive", "active"], default="inherit",
                        help="OMP_WAIT_POLICY for every worker (default inherit: the environment as it is, what "
                        "users get)")
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--skip-peers", nargs="+", default=[], choices=sorted(VARIANTS), help="leave these out")
    parser.add_argument("--no-peer-check", action="store_true", help="skip the cross-check with the plain scripts")
    parser.add_argument("--peers", default=str(SHARED_DATA.parent / "peers"),
                        help="folder of the independent peer scripts (default ../shared/peers)")
    parser.add_argument("--real", action="store_true", help="IMDB batches via loopynet's data pipeline")
    parser.add_argument("--data", default=str(SHARED_DATA / "aclImdb_v1_labeled.tar.gz"))
    parser.add_argument("--vectors", default=str(SHARED_DATA / "en_vectors_300d.bin.gz"))
    parser.add_argument("--json", default=str(HERE / "results" / "bench_train.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--variants", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.units = args.units or ([50] if quick else [50, 100])
    args.batches = args.batches or (8 if quick else 16)
    args.repeats = args.repeats or (3 if quick else 5)
    args.target_seconds = args.target_seconds or (0.4 if quick else 2.0)
    return args


def run_units(units: int, peers: dict, args, data_dir: str, ids, labels, embeddings) -> dict:
    """Time the contenders for one `units`, cross-check the peers, then the breakdown with its roofline,
    the ablation and the loss checks; prints each."""
    load = os.getloadavg()
    result = measure(units, peers, args, data_dir, args.batch)
    result["load_average_at_start"], result["load_average_after_repeats"] = load, os.getloadavg()
    print(table(units, result), flush=True)
    print(f"load average (1, 5, 15 min) before the repeats {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after "
          f"{result['load_average_after_repeats'][0]:.2f}", flush=True)
    if not args.no_peer_check:
        result["peer_check"] = anchor_check(units, result["rows"], args)
        print(format_anchor(result["peer_check"]), flush=True)
    result["breakdown_ms"] = breakdown(units, args.dropout, embeddings, ids, labels, 1, steps=10 if args.quick else 30)
    print(f"breakdown of one loopynet step on one thread (median ms, {result['breakdown_ms'].get('clock')}):")
    for phase, value in result["breakdown_ms"].items():
        if phase != "clock":
            print(f"  {phase:<40}{value:>8.3f}" if isinstance(value, float) else f"  {phase:<40}{value!s:>8}")
    peak = sgemm_peak(1)
    result["sgemm_peak"] = [peak, sgemm_peak(args.wide_threads)]
    distinct = statistics.mean(len(np.unique(b)) for b in ids)
    flops = phase_flops(ids.shape[2], ids.shape[1], embeddings.shape[1], units, distinct)
    result["roofline"] = roofline(result["breakdown_ms"], flops, peak["best_gflops"])
    print(format_roofline(result["roofline"], peak))
    wide = result["sgemm_peak"][1]
    print(f"  sgemm on {wide['threads']} threads ({wide['clock']}): {wide['best_gflops']:.0f} GFLOP/s")
    result["ablation"] = ablation(units, args.dropout, embeddings, ids, labels,
                                  steps=5 if args.quick else 20, repeats=2 if args.quick else 5)
    print("ablation: CPU ms per step on one thread with one part put back to plain PyTorch:")
    for variant, row in result["ablation"].items():
        print(f"  {variant:<30}{row['cpu_ms_per_step']:>8.2f} ms  x{row['vs_fast_path']:.2f}"
              if isinstance(row, dict) else f"  {variant}: {row}")
    result["loss_agreement"] = [loss_agreement(units, embeddings, ids, labels, 5, dtype)
                                for dtype in ("float64", "float32")]
    for check in result["loss_agreement"]:
        print(f"loss agreement, {check['dtype']}, 5 RMSprop steps from the same weights, dropout 0, "
              f"|loss - loopynet's| per step:")
        for other, diffs in check["abs_loss_difference_per_step"].items():
            print(f"  {other:<16}" + " ".join(f"{d:.1e}" for d in diffs))
    print(flush=True)
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    started = time.perf_counter()
    import torch

    args.wide_threads = args.threads or torch.get_num_threads()  # before the breakdown sets one thread
    if args.real:
        ids, labels, embeddings = real_data(args.batches, args.batch, args.maxlen, args.data, args.vectors)
    else:
        ids, labels, embeddings = synthetic_data(args.batches, args.batch, args.maxlen, args.dims, args.vocab, args.zipf)
    distinct = statistics.mean(len(np.unique(b)) for b in ids)
    policy = "inherited: " + os.environ.get("OMP_WAIT_POLICY", "unset") if args.omp_wait_policy == "inherit" else \
        args.omp_wait_policy.upper()
    print(f"data: {'IMDB (real)' if args.real else 'synthetic Zipf'}: {ids.shape[0]} batches of {ids.shape[1]} x "
          f"{ids.shape[2]}, vocabulary {embeddings.shape[0]:,} x {embeddings.shape[1]}, {distinct:,.0f} distinct "
          f"ids a batch, {float((ids == 0).mean()):.0%} padding; threads: "
          f"{args.threads or 'each framework default'}; workers' OMP_WAIT_POLICY {policy}; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    peers, notes = contenders(args.skip_keras, args.quick, tuple(args.skip_peers))
    for note in notes:
        print("note:", note)
    report = {"config": {k: v for k, v in vars(args).items() if k not in ("worker", "data_dir", "variants", "wide_threads")},
              "data": {"distinct_ids_per_batch": distinct, "padding_fraction": float((ids == 0).mean())},
              "environment": environment(args.threads), "notes": notes, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bench_train-") as data_dir:
        np.savez(Path(data_dir) / "data.npz", ids=ids, labels=labels, embeddings=embeddings)
        for units in args.units:  # the JSON is rewritten after each, so a long run keeps what it measured
            report["runs"][str(units)] = run_units(units, peers, args, data_dir, ids, labels, embeddings)
            report["seconds"] = time.perf_counter() - started
            report["load_average_at_end"] = os.getloadavg()
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json} ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
