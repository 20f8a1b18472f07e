"""Run an exported model with onnxruntime: both the classifier and the tagger need onnxruntime, NumPy and the
tokenizer only (no torch; the tagger's encoding is `loopynet.tasks.tagging.encoding`).

    OnnxClassifier("imdb-rnn.onnx").predict(["Great film."])   # [{"text", "probability", "label"}]
    OnnxTagger("ner.onnx").predict(["Angela Merkel visited Paris ."])

Both read FILE.onnx.json (see `loopynet.export.onnx`). Symbols: B batch, T time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from loopynet.data.batching import pad_trunc
from loopynet.data.tokenize import TokenizerOptions, text_list, tokenize
from loopynet.data.vocab import Vocabulary, encode_texts
from loopynet.errors import UserError
from loopynet.tasks.classification.metrics import check_threshold

FORMAT, FORMAT_VERSION = "loopynet-onnx", 1


class OnnxError(UserError, ValueError):
    """A missing or damaged .onnx file or sidecar, or one of another format or kind."""


def _open(path: str | os.PathLike, kind: str):
    """(onnxruntime session, sidecar dict) of FILE.onnx and FILE.onnx.json."""
    path = Path(path)
    sidecar_file = Path(f"{path}.json")
    for p in (path, sidecar_file):
        if not p.is_file():
            raise OnnxError(f"{p} does not exist (export writes FILE.onnx and FILE.onnx.json together)")
    try:
        sidecar = json.loads(sidecar_file.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:
        raise OnnxError(f"{sidecar_file} is unreadable ({err})") from None
    if not isinstance(sidecar, dict) or (sidecar.get("format"), sidecar.get("format_version")) != (FORMAT, FORMAT_VERSION):
        raise OnnxError(f"{sidecar_file} is not a {FORMAT} version {FORMAT_VERSION} sidecar")
    if sidecar.get("kind") != kind:
        raise OnnxError(f"{path} holds a {sidecar.get('kind')!r} model, not a {kind}")
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for damaged files
        raise OnnxError(f"{path} is not a readable ONNX model ({type(err).__name__}: {err})") from None
    return session, sidecar


class OnnxClassifier:
    """An exported classifier: texts -> P(class_names[1]) with onnxruntime."""

    def __init__(self, path: str | os.PathLike, batch_size: int = 128):
        self.session, self.sidecar = _open(path, "classifier")
        self.vocab = Vocabulary(self.sidecar["vocab"], self.sidecar["oov"])
        self.options = TokenizerOptions(**{k: v for k, v in self.sidecar["tokenizer"].items() if k != "name"})
        self.class_names, self.maxlen = self.sidecar["class_names"], self.sidecar["maxlen"]
        self.padding_safe = self.sidecar["time_axis"] == "dynamic"
        self.batch_size = batch_size

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """(N,) float64 P(class_names[1]) per text.

        Raises:
            TypeError: `texts` is one string, or holds something that is not a string.
        """
        docs = encode_texts([tokenize(t, self.options) for t in text_list(texts)], self.vocab)
        return self.predict_ids(docs)

    def predict_ids(self, docs) -> np.ndarray:
        """(N,) float64 P(class_names[1]) of encoded documents (`loopynet.data.vocab.EncodedDocs`); padding-safe
        models read batches sorted by length and trimmed to their longest document, as PyTorch's predict."""
        order = np.argsort(np.minimum(docs.lengths, self.maxlen), kind="stable") if self.padding_safe else np.arange(len(docs))
        probabilities = np.zeros(len(docs))
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            ids = pad_trunc(docs, index, self.maxlen, trim=self.padding_safe)
            probabilities[index] = self.session.run(None, {"ids": ids})[0]
        return probabilities

    def predict(self, texts: list[str], threshold: float | None = None) -> list[dict]:
        """[{"text", "probability", "label"}] per text, as `Classifier.predict` (default threshold: the model's
        saved one, from the sidecar)."""
        threshold = self.sidecar.get("threshold", {"value": 0.5})["value"] if threshold is None else threshold
        check_threshold(threshold)
        texts = text_list(texts)
        return [{"text": t, "probability": float(p), "label": self.class_names[int(p >= threshold)]}
                for t, p in zip(texts, self.predict_proba(texts))]


class OnnxTagger:
    """An exported tagger: emissions from onnxruntime, then the CRF's Viterbi in NumPy with the tag scheme's
    forbidden transitions impossible (`loopynet.export.crf`), or the best tag per token without a CRF."""

    def __init__(self, path: str | os.PathLike, batch_size: int = 256):
        from loopynet.export.crf import allowed_transitions
        from loopynet.data.indexes import CharIndex, WordIndex

        self.session, self.sidecar = _open(path, "tagger")
        self.words = WordIndex(self.sidecar["words"], self.sidecar["lowercase_fallback"])
        self.chars = CharIndex(self.sidecar["chars"])
        self.tag_names = self.sidecar["tag_names"]
        crf = self.sidecar["crf"]
        self.crf = None if crf is None else [np.array(crf[k]) for k in ("start_transitions", "transitions", "end_transitions")]
        self.allowed = allowed_transitions(self.tag_names, self.sidecar["tag_scheme"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.batch_size = batch_size

    def tag_ids(self, sentences: list[list[str]]) -> list[list[int]]:
        """Tag ids (into the sidecar's tag_names) per pre-tokenised sentence."""
        from loopynet.export.crf import viterbi
        from loopynet.tasks.tagging.encoding import encode_sentences, pad_batch

        docs = encode_sentences(sentences, self.words, self.chars, self.tag_names, self.sidecar["max_word_len"])
        out: list[list[int]] = [[] for _ in sentences]
        for start in range(0, len(sentences), self.batch_size):
            index = list(range(start, min(start + self.batch_size, len(sentences))))
            arrays = dict(zip(("words", "cases", "chars", "lengths"), pad_batch(docs, index)[:4]))
            emissions = self.session.run(None, {k: v for k, v in arrays.items() if k in self.inputs})[0]
            for b, i in enumerate(index):
                scores = emissions[b, : arrays["lengths"][b]]
                out[i] = (viterbi(scores, *self.crf, allowed=self.allowed) if self.crf is not None
                          else scores.argmax(-1).tolist())
        return out

    def predict(self, texts: list[str] | list[list[str]]) -> list[dict]:
        """[{"text", "tokens", "tags", "entities"}] per text, as `Tagger.predict` (IOB2 tags)."""
        from loopynet.data.conll import iob2_tag
        from loopynet.tasks.tagging.encoding import entities, tokenize as conll_tokenize

        texts = text_list(texts, tokens_allowed=True)
        tokenized = [conll_tokenize(t) if isinstance(t, str) else list(t) for t in texts]
        results = []
        for text, tokens, ids in zip(texts, tokenized, self.tag_ids(tokenized)):
            tags = [iob2_tag(self.tag_names[i]) for i in ids]
            results.append({"text": text if isinstance(text, str) else " ".join(text), "tokens": tokens, "tags": tags,
                            "entities": entities(tokens, tags)})
        return results
