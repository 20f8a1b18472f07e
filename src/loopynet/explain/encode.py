"""Thought vectors: one vector per document, streamed in batches to .parquet or .npy + .jsonl.

The vector is what the network condenses a document into (NLP in Action 8.5.3): the last real state h_T
(bidirectional: forward h_T with backward h_1, each direction's final state) or, for max/mean heads, the
pooled vector the head reads; never the (maxlen * units)-wide input of the book's Flatten head. The
n-gram ensemble's vector is its recurrent part's.

Documents are processed in chunks of `CHUNK` (sorted by length inside a chunk, so padding-safe batches are
trimmed), each chunk written before the next is read: memory holds one chunk's vectors, never an
N x T x units array.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from loopynet.errors import InputError

from loopynet.explain.network import Network
from loopynet.io.atomic import atomic_file

CHUNK = 2048  # documents per written chunk
SUFFIXES = (".parquet", ".npy")


def document_vectors(network: Network, rows: list[np.ndarray], batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(vectors (N, D) float32, logits (N,) float32) of N documents given as token-id arrays, in batches of
    similar length."""
    vectors = np.zeros((len(rows), vector_size(network)), dtype=np.float32)
    logits = np.zeros(len(rows), dtype=np.float32)
    order = np.argsort([min(len(r), network.rnn_maxlen) for r in rows], kind="stable")
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        vectors[index], logits[index] = network.vectors_and_logits([rows[i] for i in index])
    return vectors, logits


def vector_size(network: Network) -> int:
    """D = units * directions (times the members of a seed ensemble, whose members' vectors stand side by
    side), the length of one thought vector."""
    return network.rnn.config.units * network.directions * network.rnn.config.members


def stream(network: Network, rows: list[np.ndarray], batch_size: int = 128) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield (first document index, vectors (n, D), logits (n,)) chunk by chunk, in document order."""
    for start in range(0, len(rows), CHUNK):
        vectors, logits = document_vectors(network, rows[start : start + CHUNK], batch_size)
        yield start, vectors, logits


def write_vectors(out: str | os.PathLike, network: Network, rows: list[np.ndarray], meta: dict[str, list],
                  class_names: list[str], threshold: float = 0.5, batch_size: int = 128) -> dict:
    """Encode `rows` and write one record per document to `out` (atomically): a .parquet table with columns
    id, label, probability, prediction, length, vector (list<float32> of D); or a .npy (N, D) float32 array
    plus `out` with suffix .jsonl holding the other columns, one JSON object per line. `meta` holds the
    per-document columns id, label and length. Returns {"documents", "dims", "files"}.

    Raises:
        ValueError: `out` ends in neither .parquet nor .npy.
    """
    out = Path(out)
    if out.suffix not in SUFFIXES:
        raise InputError(f"--out {out}: the suffix chooses the format, .parquet or .npy (+ .jsonl); got {out.suffix!r}")
    dims = vector_size(network)
    chunks = stream(network, rows, batch_size)
    if out.suffix == ".parquet":
        _write_parquet(out, chunks, meta, class_names, threshold, dims)
        files = [str(out)]
    else:
        jsonl = out.with_suffix(".jsonl")
        _write_npy(out, jsonl, chunks, meta, class_names, threshold, (len(rows), dims))
        files = [str(out), str(jsonl)]
    return {"documents": len(rows), "dims": dims, "files": files}


def _records(start: int, logits: np.ndarray, meta: dict, class_names: list[str], threshold: float) -> dict:
    probability = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    n = len(logits)
    return {"id": meta["id"][start : start + n], "label": meta["label"][start : start + n],
            "probability": probability.tolist(),
            "prediction": [class_names[int(p >= threshold)] for p in probability],
            "length": meta["length"][start : start + n]}


def _write_parquet(out: Path, chunks, meta, class_names, threshold, dims: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.string()), ("label", pa.string()), ("probability", pa.float64()),
                        ("prediction", pa.string()), ("length", pa.int64()),
                        ("vector", pa.list_(pa.float32(), dims))])
    with atomic_file(out) as f, pq.ParquetWriter(f, schema) as writer:
        for start, vectors, logits in chunks:
            columns = _records(start, logits, meta, class_names, threshold)
            columns["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dims)
            writer.write_table(pa.table(columns, schema=schema))


def _write_npy(out: Path, jsonl: Path, chunks, meta, class_names, threshold, shape: tuple[int, int]) -> None:
    with atomic_file(out) as f, atomic_file(jsonl, "w") as lines:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        for start, vectors, logits in chunks:
            f.write(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
            columns = _records(start, logits, meta, class_names, threshold)
            for i in range(len(logits)):
                lines.write(json.dumps({k: v[i] for k, v in columns.items()}) + "\n")


def read_vectors(path: str | os.PathLike) -> tuple[np.ndarray, list[dict]]:
    """(vectors (N, D), records [{"id", "label", "probability", "prediction", "length"}]) of a file written by
    `write_vectors`."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        vectors = np.asarray(table.column("vector").combine_chunks().flatten()).reshape(table.num_rows, -1)
        return vectors, table.drop_columns(["vector"]).to_pylist()
    records = [json.loads(line) for line in path.with_suffix(".jsonl").read_text(encoding="utf-8").splitlines()]
    return np.load(path), records
