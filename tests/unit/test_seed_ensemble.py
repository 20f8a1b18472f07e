"""The seed ensemble (`--members K`): K recurrent classifiers trained one after the other, logits averaged."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.cli import main
from loopynet.config import ConfigError
from loopynet.models.ensemble import SeedEnsemble
from loopynet.models.factory import build_classifier
from loopynet.models.ngram import NgramEnsemble
from loopynet.models.recurrent_classifier import RecurrentClassifier

CONFIG = ModelConfig(units=3, cell="lstm", bidirectional=True, head="max", train_embeddings=True, embedding_dims=4,
                     maxlen=6, members=3)
IDS = torch.tensor([[1, 2, 3, 0, 0, 0], [4, 4, 2, 1, 3, 2]])


def table() -> torch.Tensor:
    weights = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    weights[0] = 0
    return weights


def test_members_are_the_single_networks_of_seeds_seed_to_seed_plus_k():
    ensemble = build_classifier(CONFIG, table(), seed=7).eval()
    assert isinstance(ensemble, SeedEnsemble) and len(ensemble.members) == 3
    for k, member in enumerate(ensemble.members):
        single = RecurrentClassifier(replace(CONFIG, members=1), table(), seed=7 + k)
        assert all(torch.equal(a, b) for a, b in zip(member.state_dict().values(), single.state_dict().values()))
    assert not torch.equal(ensemble.members[0].dense_kernel, ensemble.members[1].dense_kernel)
    assert ensemble.members[0].embeddings.data_ptr() != ensemble.members[1].embeddings.data_ptr()  # own tables
    assert ensemble.sparse_parameters() == [m.embeddings for m in ensemble.members]


def test_logits_are_the_mean_of_the_members_and_every_view_agrees():
    ensemble = build_classifier(CONFIG, table(), seed=0).eval()
    with torch.no_grad():
        logits = ensemble(IDS)
        each = torch.stack([member(IDS) for member in ensemble.members])  # (K, B)
        assert logits.shape == (2,)
        assert torch.allclose(logits, each.mean(0), atol=1e-7)
        x = ensemble.embed(IDS)
        assert x.shape == (2, 6, 3 * 4)
        assert torch.allclose(ensemble.forward_vectors(x, (IDS != 0).sum(1)), logits, atol=1e-6)
        out, lengths = ensemble.encode(IDS)
        assert out.shape == (2, 6, 3 * 2 * 3) and lengths.tolist() == [3, 6]
        assert torch.allclose(ensemble.head(out, lengths), logits, atol=1e-6)
        assert ensemble.document_vector(out, lengths).shape == (2, 3 * 2 * 3)
        assert torch.allclose(ensemble(IDS[:1, :3]), logits[:1], atol=1e-6)  # padding-safe
    assert ensemble.padding_safe


def test_members_must_be_at_least_one():
    with pytest.raises(ConfigError, match="members"):
        build_classifier(replace(CONFIG, members=0), table())
    assert isinstance(build_classifier(replace(CONFIG, members=1), table()), RecurrentClassifier)


def quiet_train(*args, **kwargs) -> Classifier:
    return Classifier.train(*args, progress=False, log=lambda s: None, **kwargs)


def test_member_zero_trains_exactly_as_the_single_network_and_the_folder_round_trips(tiny_imdb, tiny_vectors,
                                                                                     tmp_path, capsys, one_thread):
    model = ModelConfig(units=4, cell="lstm", bidirectional=True, head="max", train_embeddings=True, members=2, maxlen=12)
    train = TrainConfig(epochs=2, batch_size=8, optimizer="adam", lr=1e-2, seed=3)
    ensemble = quiet_train(tiny_imdb, tiny_vectors, DataConfig(), model, train)
    single = quiet_train(tiny_imdb, tiny_vectors, DataConfig(), replace(model, members=1), train)
    first, second = ensemble.model.members
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), single.model.state_dict().values()))
    assert not torch.equal(first.embeddings, second.embeddings)  # its own seed: init, batch order, dropout
    assert [(r["member"], r.get("epoch")) for r in ensemble.history] == [(0, 1), (0, 2), (1, 1), (1, 2), ("ensemble", None)]
    assert ensemble.history[:2] == [{"member": 0, **r} | {"seconds": ensemble.history[i]["seconds"],
                                    "samples_per_second": ensemble.history[i]["samples_per_second"],
                                    "val_seconds": ensemble.history[i]["val_seconds"]}
                                    for i, r in enumerate(single.history)]
    texts = ["great wonderful film", "the plot was awful and boring", ""]
    p = ensemble.predict_proba(texts)
    logit = lambda q: np.log(q) - np.log1p(-q)  # noqa: E731
    second_alone = 1 / (1 + np.exp(-(2 * logit(p) - logit(single.predict_proba(texts)))))
    with torch.no_grad():
        ids = torch.from_numpy(ensemble._docs(texts).ids[:3].astype(np.int64)).view(1, 3)  # "great wonderful film"
        assert abs(float(torch.sigmoid(second.eval()(ids))) - second_alone[0]) < 1e-5
    assert ensemble.encode(texts)["vectors"].shape == (3, 2 * 2 * 4)  # the members' max-pooled vectors side by side
    explained = ensemble.explain(texts[:1], steps=20)[0]
    assert abs(explained["probability"] - p[0]) < 1e-6 and explained["hidden"].shape == (3, 2 * 2 * 4)
    assert abs(explained["attribution"].sum() + explained["baseline_logit"] - explained["logit"]) < 0.01  # IG completeness
    loaded = Classifier.load(ensemble.save(tmp_path / "ensemble"))
    assert isinstance(loaded.model, SeedEnsemble) and loaded.model.config.members == 2
    np.testing.assert_array_equal(loaded.predict_proba(texts), p)
    assert loaded.history == ensemble.history
    for kind, message in (("onnx", "seed ensemble (--members) cannot be exported to ONNX"),
                          ("keras", "seed ensemble (members=2) has no single Keras equivalent")):
        capsys.readouterr()
        assert main(["export", str(tmp_path / "ensemble"), "--format", kind, "--out", str(tmp_path / f"e.{kind}")]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / f"e.{kind}").exists()


def test_an_ngram_ensemble_can_hold_a_seed_ensemble(tiny_imdb, tiny_vectors, tmp_path, one_thread):
    model = ModelConfig(units=4, cell="gru", head="mean", ngram=2, rnn_maxlen=8, members=2, maxlen=16)
    clf = quiet_train(tiny_imdb, tiny_vectors, DataConfig(), model,
                      TrainConfig(epochs=1, batch_size=8, optimizer="adam", lr=1e-2))
    assert isinstance(clf.model, NgramEnsemble) and isinstance(clf.model.rnn, SeedEnsemble)
    assert clf.model.rnn.config.maxlen == 8 and clf.model.mix[1] != 0
    texts = ["great wonderful film", "awful boring plot"]
    np.testing.assert_array_equal(Classifier.load(clf.save(tmp_path / "best")).predict_proba(texts),
                                  clf.predict_proba(texts))
