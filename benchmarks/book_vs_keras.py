"""Accuracy oracle: the chapter's model trained by loopynet and by Keras on the same data.

Both get the same token ids, the same 80/20 split and the same frozen embedding matrix from
loopynet's pipeline; Keras builds the chapter's Sequential model (SimpleRNN(50, return_sequences)
-> Dropout(0.2) -> Flatten -> Dense(1, sigmoid), RMSprop, binary cross-entropy, batch 32) on a
frozen Embedding. Prints a table of val_accuracy per epoch and P(pos) of the chapter's `sample_1`
(NLP in Action 8.5: the book's model labels it negative) and writes
benchmarks/results/book_vs_keras.json.

    .venv/bin/python benchmarks/book_vs_keras.py --seeds 0 1          # full book run, ~5 min per seed
    .venv/bin/python benchmarks/book_vs_keras.py --limit 2000 --seeds 0   # quick
    .venv/bin/python benchmarks/book_vs_keras.py --pipeline default --word-weights none --seeds 0 1 2 3 4 \
        --threads 1 --out benchmarks/results/book_vs_keras_default_unweighted.json

`--threads` sets loopynet's torch threads only; Keras runs with its backend's defaults. Needs Keras 3 and
a backend (`pip install -e '.[bench]'`; Keras' default backend is TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from book_seeds import SAMPLE_1  # benchmarks/ is on sys.path when a script in it runs

from loopynet.config import BOOK_DATA, WORD_WEIGHTS, DataConfig, ModelConfig, TrainConfig, to_dict
from loopynet.data.batching import pad_trunc
from loopynet.data.prepare import prepare_training_data, tokenizer_options
from loopynet.data.tokenize import tokenize
from loopynet.data.vectors import load_vectors
from loopynet.data.vocab import encode_texts
from loopynet.io.atomic import atomic_file
from loopynet.models.classifier import BookClassifier
from loopynet.tasks.classification.task import BinaryTask, predict_proba
from loopynet.train.loop import fit

DATA = Path(os.environ.get("LOOPYNET_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
RESULTS = Path(__file__).resolve().parent / "results"


def encode_sample_1(prepared, data_config):
    return encode_texts([tokenize(SAMPLE_1, tokenizer_options(data_config))], prepared.vocab)


def run_loopynet(prepared, data_config, seed: int) -> dict:
    config = TrainConfig(seed=seed)
    model_config = ModelConfig(embedding_dims=prepared.embeddings.shape[1])
    model = BookClassifier(model_config, torch.from_numpy(prepared.embeddings), seed=seed)
    start = time.perf_counter()
    history = fit(model, BinaryTask(model_config.maxlen), config, prepared.train, prepared.validation, progress=False)
    seconds = time.perf_counter() - start
    sample_1 = predict_proba(model, encode_sample_1(prepared, data_config), model_config.maxlen)[0]
    return {"val_accuracy": [h["val_accuracy"] for h in history], "loss": [h["loss"] for h in history],
            "seconds": seconds, "sample_1_probability": float(sample_1)}


def run_keras(prepared, data_config, seed: int) -> dict:
    import keras

    maxlen = ModelConfig().maxlen  # the book's 400
    x_train = pad_trunc(prepared.train, np.arange(len(prepared.train)), maxlen)
    x_val = pad_trunc(prepared.validation, np.arange(len(prepared.validation)), maxlen)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((maxlen,), dtype="int32"),
        keras.layers.Embedding(len(prepared.vocab), prepared.embeddings.shape[1], weights=[prepared.embeddings],
                               trainable=False),
        keras.layers.SimpleRNN(50, return_sequences=True),
        keras.layers.Dropout(0.2),
        keras.layers.Flatten(),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile("rmsprop", "binary_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x_train, prepared.train.labels, batch_size=32, epochs=2, verbose=0,
                        validation_data=(x_val, prepared.validation.labels)).history
    seconds = time.perf_counter() - start
    sample_1 = encode_sample_1(prepared, data_config)
    sample_1 = model.predict(pad_trunc(sample_1, np.arange(1), maxlen), verbose=0)[0, 0]
    return {"val_accuracy": history["val_accuracy"], "loss": history["loss"], "seconds": seconds,
            "backend": keras.backend.backend(), "sample_1_probability": float(sample_1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--limit", type=int, default=None, help="documents of the training split (default: all 25,000)")
    parser.add_argument("--pipeline", choices=["book", "default"], default="book",
                        help="book: raw Treebank tokens and raw vectors (the chapter); default: loopynet's defaults "
                             "(cleaned tokens; vectors all-but-the-top, unit norm, SIF-weighted)")
    parser.add_argument("--word-weights", choices=WORD_WEIGHTS, default=None,
                        help="override the pipeline's word weights (e.g. none: the default pipeline without SIF)")
    parser.add_argument("--threads", type=int, default=None, help="loopynet's torch threads (default: torch's own)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: results/book_vs_keras.json, "
                                                              "or book_vs_keras_default.json for --pipeline default)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    overrides = {"word_weights": args.word_weights} if args.word_weights else {}
    vectors = load_vectors(DATA / "en_vectors_300d.bin.gz")
    rows = []
    for seed in args.seeds:
        data_config = DataConfig(**((BOOK_DATA if args.pipeline == "book" else {}) | overrides), limit=args.limit)
        prepared = prepare_training_data(DATA / "aclImdb_v1_labeled.tar.gz", vectors, data_config, ModelConfig().maxlen,
                                         seed, log=lambda s: None)
        for name, run in (("loopynet", run_loopynet), ("keras", run_keras)):
            rows.append({"implementation": name, "seed": seed, **run(prepared, data_config, seed)})
            print_row(rows[-1])
    out = args.out or RESULTS / ("book_vs_keras.json" if args.pipeline == "book" else "book_vs_keras_default.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"limit": args.limit, "pipeline": args.pipeline, "data_config": to_dict(data_config),
               "loopynet_threads": args.threads, "runs": rows}
    with atomic_file(out, "w") as f:
        f.write(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}")


def print_row(row: dict) -> None:
    accuracies = " -> ".join(f"{a:.4f}" for a in row["val_accuracy"])
    losses = " -> ".join(f"{a:.4f}" for a in row["loss"])
    print(f"{row['implementation'] + ' ' + row.get('backend', ''):<22} seed {row['seed']}  val_accuracy {accuracies}  "
          f"loss {losses}  P(pos|sample_1) {row['sample_1_probability']:.3f}  {row['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
