"""onnxruntime against PyTorch: predict on the 25,000 IMDB test reviews, same model, same batches.

Models: the book's network (SimpleRNN(50) + Flatten, 300-d vectors, maxlen 400) and the imdb-rnn network
(bidirectional LSTM(64), max head), each trained for 1 epoch on a 2,000-review slice (the weights do not
change the speed), or the model folders given with --models. Both sides get the same token ids (the test
split tokenised once, through the token cache) and batches of 128; PyTorch runs loopynet's predict
(`loopynet.train.loop.predict_proba`: compiled C kernels for the book's network), onnxruntime the exported
file (`OnnxClassifier.predict_ids`), both on --threads threads. Interleaved repeats; the ratio is the median
of per-repeat ratios (> 1: onnxruntime is faster). Also max |dp| over all 25,000 reviews.
Table on stdout, JSON in results/bench_onnx.json.

    .venv/bin/python benchmarks/bench_onnx.py                # ~5 min on 2 busy cores
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.data.prepare import tokenizer_options
from loopynet.data.tokenized import load_tokenized
from loopynet.data.vocab import encode
from loopynet.export.onnx import export_folder
from loopynet.export.runtime import OnnxClassifier
from loopynet.home import cache_dir
from loopynet.tasks.classification.task import predict_proba

RESULTS = Path(__file__).resolve().parent / "results" / "bench_onnx.json"
SHARED = Path(os.environ.get("LOOPYNET_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
NETWORKS = {
    "book": (DataConfig(limit=2000), ModelConfig(), TrainConfig(epochs=1)),
    "imdb-rnn network": (DataConfig(limit=2000, val_split=0.1, vector_norm="unit", word_weights="none"),
                         ModelConfig(cell="lstm", units=64, bidirectional=True, head="max", dropout=0.3,
                                     train_embeddings=True),
                         TrainConfig(epochs=1, optimizer="adam", lr=2e-3, batch_size=64, clip_norm=5.0)),
}


def models(folders: list[str], work: Path) -> dict[str, Path]:
    if folders:
        return {Path(f).name: Path(f) for f in folders}
    out = {}
    for name, (data, model, train) in NETWORKS.items():
        clf = Classifier.train(SHARED / "aclImdb_v1_labeled.tar.gz", SHARED / "en_vectors_300d.bin.gz", data, model,
                               train, progress=False, log=lambda s: None)
        out[name] = clf.save(work / name.replace(" ", "-"))
    return out


def measure(name: str, folder: Path, work: Path, repeats: int, threads: int) -> dict:
    clf = Classifier.load(folder)
    onnx_file, _ = export_folder(folder, work / f"{folder.name}.onnx")
    runtime = OnnxClassifier(onnx_file)
    corpus = load_tokenized(SHARED / "aclImdb_v1_labeled.tar.gz", "test", "strict", cache_dir(),
                            tokenizer_options(clf.data_config))
    docs, _ = encode(corpus, clf.vocab)
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    runtime.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    torch_s, ort_s, ratios = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        p_torch = predict_proba(clf.model, docs, clf.maxlen)
        torch_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        p_ort = runtime.predict_ids(docs)
        ort_s.append(time.perf_counter() - start)
        ratios.append(torch_s[-1] / ort_s[-1])
    return {"model": name, "reviews": len(docs), "torch_seconds": statistics.median(torch_s),
            "onnxruntime_seconds": statistics.median(ort_s), "speedup": statistics.median(ratios),
            "speedup_min": min(ratios), "speedup_max": max(ratios),
            "max_abs_dp": float(np.abs(p_torch - p_ort).max()), "threads": threads, "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=[], help="model folders (default: train the two networks)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, folder, Path(tmp), args.repeats, args.threads)
                for name, folder in models(args.models, Path(tmp)).items()]
    print(f"{'model':<18}{'reviews':>9}{'PyTorch s':>11}{'onnxruntime s':>15}{'ORT speed-up':>22}{'max |dp|':>11}")
    for r in rows:
        spread = f"{r['speedup']:.2f} ({r['speedup_min']:.2f}-{r['speedup_max']:.2f})"
        print(f"{r['model']:<18}{r['reviews']:>9,}{r['torch_seconds']:>11.2f}{r['onnxruntime_seconds']:>15.2f}"
              f"{spread:>22}{r['max_abs_dp']:>11.2g}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows, "load_average": os.getloadavg()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
