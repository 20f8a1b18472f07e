"""Export a model folder to ONNX plus a JSON sidecar that holds everything else a runtime needs.

    export_folder("runs/imdb-rnn", "imdb-rnn.onnx")   # writes imdb-rnn.onnx and imdb-rnn.onnx.json

Exporter: `torch.onnx.export(..., dynamo=False)`, the TorchScript exporter. It maps torch.nn.RNN/GRU/LSTM
to ONNX's RNN/GRU/LSTM operators and keeps the time axis dynamic; the dynamo exporter (torch 2.13)
specialised torch.nn.RNN's time axis to the example's length (onnxruntime then refused any other
length) and took ~10x longer. Opset 17. The batch axis is dynamic for every model, the time axis for
every padding-safe one (heads last/mean/max, the tagger); flatten heads read exactly maxlen steps.

Every export is checked before it is written: onnxruntime must reproduce PyTorch's outputs on a batch
of the model's own words at two lengths within 1e-4, else nothing is written (`ExportError`).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from loopynet.version import __version__
from loopynet.config import to_dict
from loopynet.data.prepare import tokenizer_options
from loopynet.data.tokenize import TOKENIZER_NAME
from loopynet.export.graphs import ClassifierGraph, ExportError, TaggerGraph
from loopynet.io.artifact import weights_version, write_json
from loopynet.io.atomic import atomic_file
from loopynet.tasks.loading import load_model

OPSET = 17
FORMAT = "loopynet-onnx"
FORMAT_VERSION = 1
CHECK_TOLERANCE = 1e-4  # |onnxruntime - PyTorch| allowed in the export's own check (tests ask 1e-5)


def sidecar_path(onnx_path: str | os.PathLike) -> Path:
    """The JSON sidecar of FILE.onnx: FILE.onnx.json."""
    return Path(f"{onnx_path}.json")


def export_folder(model: str | os.PathLike, out: str | os.PathLike, opset: int = OPSET) -> tuple[Path, Path]:
    """Export the model folder `model` to `out` (.onnx) and its sidecar `out`.json, both written atomically.

    Raises:
        ArtifactError: a missing or damaged model folder.
        ExportError: `out` is not a .onnx path, the model kind cannot be exported (n-gram mix), or
            onnxruntime does not reproduce PyTorch's outputs (nothing is written then).
    """
    out = Path(out)
    if out.suffix != ".onnx" or out.is_dir():
        raise ExportError(f"--out must be a FILE.onnx path, got {out}")
    if not out.parent.is_dir():
        raise ExportError(f"--out {out}: folder {out.parent} does not exist")
    loaded = load_model(model)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "opset": opset,
              "exporter": "torch.onnx.export (TorchScript)", "loopynet_version": __version__,
              "torch_version": torch.__version__, "name": Path(model).resolve().name, "version": weights_version(model)}
    if hasattr(loaded, "class_names"):
        graph, names, axes, sidecar = _classifier(loaded)
    else:
        graph, names, axes, sidecar = _tagger(loaded)
    examples = _examples(graph, loaded)
    data = _trace(graph, examples[0], names, axes, opset)
    _check(data, graph, examples, names[0])
    with atomic_file(out, "wb") as f:
        f.write(data)
    write_json(sidecar_path(out), header | sidecar)
    return out, sidecar_path(out)


def export_onnx(model: str | os.PathLike, out: str | os.PathLike) -> str:
    """`loopynet export MODEL --format onnx --out FILE.onnx` (cli.EXPORT_FORMATS): `export_folder` at the
    default opset; returns the files written, for the CLI's message. Raises as `export_folder`."""
    onnx_file, sidecar = export_folder(model, out)
    return f"{onnx_file} and {sidecar}"


def _classifier(clf):
    graph = ClassifierGraph(clf.model)
    time_axis = {1: "time"} if graph.padding_safe else {}
    axes = {"ids": {0: "batch", **time_axis}, "probability": {0: "batch"}}
    sidecar = {"kind": "classifier", "inputs": {"ids": "(batch, time) int64 token ids, first maxlen tokens, "
                                                        "post-padded with 0"},
               "outputs": {"probability": "(batch,) float32 P(class_names[1])"},
               "time_axis": "dynamic" if graph.padding_safe else "fixed", "maxlen": clf.maxlen,
               "vocab": clf.vocab.words, "oov": clf.vocab.oov,
               "tokenizer": {"name": TOKENIZER_NAME, **asdict(tokenizer_options(clf.data_config))},
               "class_names": clf.class_names, "threshold": clf.threshold, "model": to_dict(clf.model.config)}
    return graph, (["ids"], ["probability"]), axes, sidecar


def _tagger(tagger):
    from loopynet.data.tokenize import DEFAULT  # the tagger's predict tokenises with the default pipeline

    graph = TaggerGraph(tagger.model)
    inputs = ["words", "cases", "chars", "lengths"]
    axes = {"words": {0: "batch", 1: "time"}, "cases": {0: "batch", 1: "time"},
            "chars": {0: "batch", 1: "time", 2: "characters"}, "lengths": {0: "batch"},
            "emissions": {0: "batch", 1: "time"}}
    crf = tagger.model.crf if tagger.model.config.crf else None
    sidecar = {"kind": "tagger", "inputs": {"words": "(batch, time) int64 word rows", "cases": "(batch, time) int64 "
                                            "casing classes", "chars": "(batch, time, characters) int64 char ids",
                                            "lengths": "(batch,) int64 tokens per sentence"},
               "outputs": {"emissions": "(batch, time, tags) float32 scores (real tokens only)"},
               "time_axis": "dynamic", "words": tagger.words.words, "lowercase_fallback": tagger.words.lowercase_fallback,
               "chars": tagger.chars.chars, "max_word_len": tagger.data_config.max_word_len,
               "tokenizer": {"name": TOKENIZER_NAME, **asdict(DEFAULT)},
               "tag_names": tagger.tag_names, "tag_scheme": tagger.data_config.tag_scheme,
               "crf": None if crf is None else {name: getattr(crf, name).detach().tolist()
                                                for name in ("start_transitions", "transitions", "end_transitions")},
               "model": to_dict(tagger.model.config)}
    return graph, (inputs, ["emissions"]), axes, sidecar


def _examples(graph, loaded) -> list[tuple[torch.Tensor, ...]]:
    """Two input batches of the model's own vocabulary ids: the traced one and one of another length."""
    rng = np.random.default_rng(0)
    if isinstance(graph, ClassifierGraph):
        T = loaded.maxlen
        lengths = [[T, T // 2, 1, 0], [T, 3, T - 1]] if not graph.padding_safe else [[5, 2, 0, 7], [11, 4, 1]]
        vocab = len(loaded.vocab)
        batches = []
        for rows in lengths:
            ids = np.zeros((len(rows), T if not graph.padding_safe else max(rows)), dtype=np.int64)
            for b, n in enumerate(rows):
                ids[b, :n] = rng.integers(1, vocab, n) if vocab > 1 else 0
            batches.append((torch.from_numpy(ids),))
        return batches
    from loopynet.tasks.tagging.encoding import encode_sentences, pad_batch

    words = loaded.words.words[2:] or ["x"]
    batches = []
    for rows in ([6, 2, 4], [9, 1]):
        sentences = [list(rng.choice(words, n)) for n in rows]
        docs = encode_sentences(sentences, loaded.words, loaded.chars, loaded.tag_names, loaded.data_config.max_word_len)
        batches.append(tuple(torch.from_numpy(a) for a in pad_batch(docs, list(range(len(rows))))[:4]))
    return batches


def _trace(graph, example, names, axes, opset: int) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer notes
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, example, buffer, dynamo=False, opset_version=opset, input_names=names[0],
                          output_names=names[1], dynamic_axes=axes)
    return buffer.getvalue()


def _check(data: bytes, graph, examples, input_names: list[str]) -> None:
    """Raise ExportError unless onnxruntime reproduces PyTorch on every example (real positions only)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    for example in examples:
        with torch.no_grad():
            expected = graph(*example).numpy()
        got = session.run(None, {n: t.numpy() for n, t in zip(input_names, example) if n in wanted})[0]
        if isinstance(graph, TaggerGraph):  # compare real tokens only
            mask = np.arange(expected.shape[1])[None, :] < example[3].numpy()[:, None]
            expected, got = expected[mask], got[mask]
        gap = float(np.abs(expected - got).max(initial=0.0))
        if not gap <= CHECK_TOLERANCE:
            raise ExportError(f"onnxruntime differs from PyTorch by {gap:.3g} on the export check "
                              f"(allowed {CHECK_TOLERANCE}); nothing was written")
