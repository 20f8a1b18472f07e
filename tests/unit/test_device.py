"""--device: which device a name means, one clear error for an unavailable one, and no tensor created on a
hard-coded device anywhere in training, prediction and evaluation (classifier and tagger)."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import write_word2vec
from torch.overrides import TorchFunctionMode

import loopynet
from loopynet import Classifier, Tagger
from loopynet.cli import main
from loopynet.config import DataConfig, ModelConfig, TaggerConfig, TaggerDataConfig, TrainConfig
from loopynet.device import DeviceError, resolve_device
from loopynet.models import fast_kernel

pytestmark = pytest.mark.usefixtures("one_thread")

PACKAGE = str(Path(loopynet.__file__).parent) + os.sep
FACTORIES = {torch.zeros, torch.ones, torch.empty, torch.full, torch.rand, torch.randn, torch.randint, torch.arange,
             torch.tensor, torch.eye, torch.linspace, torch.randperm, torch.as_tensor}


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_is_cuda_only_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda") == resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") == resolve_device("cpu")


def test_cuda_without_cuda_is_one_clear_error(no_cuda):
    with pytest.raises(DeviceError, match=r"^--device cuda: CUDA is not available \(.*\); use --device cpu or "
                                          r"--device auto$"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="must be one of auto, cpu, cuda, got 'gpu'"):
        resolve_device("gpu")


@pytest.mark.parametrize("argv", [
    ["train", "--data", "missing-data", "--vectors", "missing.bin", "--out", "OUT"],
    ["evaluate", "missing-model", "--data", "missing-data"],
    ["predict", "missing-model", "a text"],
    ["tune", "--data", "missing-data", "--vectors", "missing.bin", "--out", "OUT"],
    ["tag", "train", "--data", "missing-data", "--vectors", "missing.bin", "--out", "OUT"],
    ["tag", "evaluate", "missing-model"],
    ["tag", "predict", "missing-model", "a text"],
])
def test_every_command_refuses_cuda_first_with_exit_2(argv, no_cuda, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--device cuda: CUDA is not available" in err, err
    assert not (tmp_path / "OUT").exists()


class FactoryCalls(TorchFunctionMode):
    """Records tensor factory calls made by loopynet's own code without a `device` argument (constructors
    excepted: networks are built on the CPU by design, then moved)."""

    def __init__(self):
        super().__init__()
        self.undirected: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs:
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(PACKAGE) and caller.f_code.co_name != "__init__":
                where = f"{Path(caller.f_code.co_filename).name}:{caller.f_lineno} {caller.f_code.co_name}"
                self.undirected.append(f"{func.__name__} at {where}")
        return func(*args, **kwargs)


@pytest.mark.parametrize("model_config", [
    ModelConfig(units=5),  # the book's network
    ModelConfig(units=4, cell="gru", bidirectional=True, head="max"),
    ModelConfig(units=4, cell="rnn", head="last", stateful=True, chunk_len=5),
    ModelConfig(units=4, cell="lstm", layers=2, head="mean", train_embeddings=True),
], ids=["book", "bigru-max", "stateful-rnn", "lstm2-finetuned"])
def test_classifier_creates_no_tensor_on_a_hard_coded_device(model_config, tiny_imdb, tiny_vectors, monkeypatch):
    """With the C kernels off (as on CUDA), training, prediction and evaluation create every tensor on the
    device of the data they compute with."""
    monkeypatch.setenv(fast_kernel.ENV, "torch")
    with FactoryCalls() as calls:
        clf = Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), replace(model_config, maxlen=12),
                               TrainConfig(epochs=1, batch_size=16, ema_decay=0.9), progress=False,
                               log=lambda s: None, device="cpu")
        clf.predict(["great fun .", ""])
        clf.evaluate(tiny_imdb, limit=10)
    assert calls.undirected == []


def _tiny_conll(folder: Path) -> list[str]:
    """train.txt and valid.txt in CoNLL-2003's format (token POS chunk NER), 12 and 4 sentences; the words."""
    sentences = [[("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O"), (".", "O")],
                 [("Peter", "B-PER"), ("Blackburn", "I-PER"), ("visits", "O"), ("Brussels", "B-LOC")]]
    folder.mkdir()
    for name, count in (("train", 12), ("valid", 4)):
        lines = ["-DOCSTART- -X- -X- O", ""]
        for i in range(count):
            lines += [f"{token} NN O {tag}" for token, tag in sentences[i % 2]] + [""]
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return sorted({token.lower() for sentence in sentences for token, _ in sentence})


def test_tagger_creates_no_tensor_on_a_hard_coded_device(tmp_path, monkeypatch):
    monkeypatch.setenv(fast_kernel.ENV, "torch")
    conll = tmp_path / "conll"
    words = _tiny_conll(conll)
    vectors = write_word2vec(tmp_path / "v.bin", words, torch.randn(len(words), 4).numpy())
    with FactoryCalls() as calls:
        for cell in ("rnn", "lstm"):
            tagger = Tagger.train(conll, vectors, TaggerDataConfig(limit=30, validation_limit=10, train_embeddings=True),
                                  TaggerConfig(cell=cell, units=4, char_dims=3, char_filters=4, casing_dims=2,
                                               word_dropout=0.1),
                                  TrainConfig(epochs=1, batch_size=8, optimizer="adam"), progress=False,
                                  log=lambda s: None, device="cpu")
            tagger.predict(["EU rejects German call ."])
    assert calls.undirected == []


def test_the_check_catches_a_factory_call_without_a_device(monkeypatch, tiny_imdb, tiny_vectors):
    """Not vacuous: the dropout mask as drawn before --device (a bare torch.rand), compiled at its place in
    the package, is caught once per training batch."""
    from loopynet.models import classifier

    monkeypatch.setenv(fast_kernel.ENV, "torch")
    namespace = {"torch": torch}
    before = "def dropout_mask(shape, p, kernels=None, device=None):\n    return (torch.rand(shape) >= p).to(torch.uint8)\n"
    exec(compile(before, classifier.__file__, "exec"), namespace)
    monkeypatch.setattr(classifier, "dropout_mask", namespace["dropout_mask"])
    with FactoryCalls() as calls:
        Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), ModelConfig(units=5, maxlen=12),
                         TrainConfig(epochs=1, batch_size=16), progress=False, log=lambda s: None, device="cpu")
    assert calls.undirected == ["rand at classifier.py:2 dropout_mask"] * 6  # 96 training reviews / 16
