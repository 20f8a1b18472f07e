"""Nothing wrong is saved, nothing changes silently: model folders prove their weights, resume refuses
other settings, what the numbers depend on is recorded, diverging training stops."""

from __future__ import annotations

import json
import re
import shutil
import struct

import numpy as np
import pytest
import torch
from safetensors import safe_open

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.cli import main
from loopynet.io.artifact import ArtifactError, sha256_file

SMALL = dict(data_config=DataConfig(), model_config=ModelConfig(units=6, maxlen=12),
             train_config=TrainConfig(epochs=2, batch_size=8, lr=5e-3))
TEXTS = ["great wonderful film", "awful boring plot"]


@pytest.fixture(scope="module")
def saved(tiny_imdb, tiny_vectors, tmp_path_factory):
    clf = Classifier.train(tiny_imdb, tiny_vectors, progress=False, log=lambda s: None, **SMALL)
    return clf.save(tmp_path_factory.mktemp("runs") / "tiny")


def _copy(saved, tmp_path):
    return shutil.copytree(saved, tmp_path / "copy")


def _tensor_offset(folder, name: str) -> int:
    """Byte offset of tensor `name`'s data in model.safetensors (8-byte header length + JSON header)."""
    raw = (folder / "model.safetensors").read_bytes()
    header_len = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + header_len])
    return 8 + header_len + header[name]["data_offsets"][0]


def test_config_records_the_weights_sha256(saved):
    config = json.loads((saved / "config.json").read_text())
    assert config["weights"] == {"file": "model.safetensors", "bytes": (saved / "model.safetensors").stat().st_size,
                                 "sha256": sha256_file(saved / "model.safetensors")}


def test_damaged_bias_bytes_are_refused_with_the_checksum(saved, tmp_path, capsys):
    folder = _copy(saved, tmp_path)
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        bias = next(k for k in f.keys() if "bias" in k)
    raw = bytearray((folder / "model.safetensors").read_bytes())
    offset = _tensor_offset(folder, bias)
    raw[offset:offset + 4] = b"\xff\xff\xff\xff"  # a float32 NaN
    (folder / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="SHA-256"):
        Classifier.load(folder)
    assert main(["predict", str(folder), "--json", *TEXTS]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "SHA-256" in err and len(err.strip().splitlines()) == 1


def test_non_finite_weights_are_refused_by_name_even_without_a_checksum(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    del config["weights"]  # a folder written before the checksum was recorded
    (folder / "config.json").write_text(json.dumps(config))
    raw = bytearray((folder / "model.safetensors").read_bytes())
    offset = _tensor_offset(folder, "dense_bias")
    raw[offset:offset + 4] = b"\xff\xff\xff\xff"
    (folder / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match=r"tensor dense_bias holds 1 NaN"):
        Classifier.load(folder)


def test_flipped_recurrent_bytes_are_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    raw = bytearray((folder / "model.safetensors").read_bytes())
    offset = _tensor_offset(folder, "rnn.recurrent_kernel")
    for i in range(offset, offset + 40):
        raw[i] ^= 0x40  # finite values, other weights: only the checksum can tell
    (folder / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="damaged or replaced"):
        Classifier.load(folder)


def test_non_finite_weights_are_never_saved(saved, tmp_path):
    clf = Classifier.load(saved)
    with torch.no_grad():
        clf.model.dense_bias.fill_(float("nan"))
    with pytest.raises(ArtifactError, match="dense_bias"):
        clf.save(tmp_path / "nan")
    assert not (tmp_path / "nan").exists()
    with pytest.raises(ValueError, match="not a finite probability"):
        clf.predict(TEXTS)


def test_divergence_guard_names_epoch_and_batch():
    from loopynet.train.loop import DIVERGENCE_BATCHES, DivergenceGuard, TrainingError
    guard = DivergenceGuard()
    for batch in range(1, DIVERGENCE_BATCHES + 1):
        guard.check(1.0 + (batch % 2) * 0.2, 1, batch)  # mean 1.1
    guard.check(10.9, 2, 7)  # under 10x: fine
    with pytest.raises(TrainingError, match=r"diverged at epoch 2, batch 8: loss 11.5 is more than 10x .* \(1.1\)"):
        guard.check(11.5, 2, 8)
    with pytest.raises(TrainingError, match="loss became nan at epoch 3, batch 1"):
        guard.check(float("nan"), 3, 1)


@pytest.mark.parametrize("lr", ["0", "-1", "11", "1e39", "nan"])
def test_learning_rate_outside_0_10_is_refused_before_reading(lr, tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "missing"), "--vectors", str(tmp_path / "missing.bin"),
                 "--out", str(tmp_path / "out"), "--lr", lr])
    assert code == 2
    err = capsys.readouterr().err
    assert "lr must be in (0, 10]" in err and "missing" not in err
    assert not (tmp_path / "out").exists()


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tiny_imdb, tiny_vectors, tmp_path):
    from loopynet.train.checkpoint import load_checkpoint
    from loopynet.train.loop import TrainingError
    config = TrainConfig(epochs=8, batch_size=1, lr=10.0)
    with pytest.raises(TrainingError, match=r"diverged at epoch (\d), batch (\d+)") as caught:
        Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), ModelConfig(units=6, maxlen=12), config,
                         progress=False, log=lambda s: None, checkpoint_dir=tmp_path / "ckpt")
    epoch = int(re.search(r"epoch (\d)", str(caught.value)).group(1))
    saved = load_checkpoint(tmp_path / "ckpt")
    assert len(saved["history"]) == epoch - 1 and all(np.isfinite(h["loss"]) for h in saved["history"])


def _train_cli(data, vectors, out, *flags):
    return main(["train", "--data", str(data), "--vectors", str(vectors), "--out", str(out), "--maxlen", "12",
                 "--units", "6", "--batch-size", "8", "--lr", "5e-3", "--quiet", *flags])


def test_resume_refuses_other_settings_naming_each_with_both_values(tiny_imdb, tiny_vectors, tmp_path, capsys):
    out = tmp_path / "m"
    assert _train_cli(tiny_imdb, tiny_vectors, out, "--epochs", "1") == 0
    saved = (out / "model.safetensors").read_bytes()
    for flags, named in [(["--lr", "0.01"], "train.lr: checkpoint 0.005, now 0.01"),
                         (["--dropout", "0.5"], "model.dropout: checkpoint 0.2, now 0.5"),
                         (["--rho", "0.8"], "train.rho: checkpoint 0.9, now 0.8"),
                         (["--batch-size", "4"], "train.batch_size: checkpoint 8, now 4"),
                         (["--lr-decay", "0.1"], "train.lr_decay: checkpoint 0.0, now 0.1"),
                         (["--seed", "3", "--limit", "50"], "data.limit: checkpoint None, now 50; train.seed: checkpoint 0, now 3")]:
        capsys.readouterr()
        assert _train_cli(tiny_imdb, tiny_vectors, out, "--epochs", "2", "--resume", *flags) == 2
        err = capsys.readouterr().err
        assert named in err and "cannot resume" in err, err
        assert "train " not in err  # refused before the corpus was read (no data report line)
    assert (out / "model.safetensors").read_bytes() == saved


def test_resume_with_more_epochs_equals_an_uninterrupted_run(tiny_imdb, tiny_vectors, tmp_path):
    assert _train_cli(tiny_imdb, tiny_vectors, tmp_path / "a", "--epochs", "1") == 0
    assert _train_cli(tiny_imdb, tiny_vectors, tmp_path / "a", "--epochs", "2", "--resume") == 0
    assert _train_cli(tiny_imdb, tiny_vectors, tmp_path / "b", "--epochs", "2") == 0
    resumed, straight = Classifier.load(tmp_path / "a"), Classifier.load(tmp_path / "b")
    assert resumed.train_config.epochs == 2 and len(resumed.history) == 2
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()))


def test_runtime_is_recorded_and_another_one_warns(saved, tiny_imdb):
    config = json.loads((saved / "config.json").read_text())
    assert config["runtime"]["threads"] == torch.get_num_threads()
    assert config["runtime"]["kernel"] in ("compiled", "torch")
    clf = Classifier.load(saved)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        with pytest.warns(RuntimeWarning, match=rf"evaluating under another runtime .*threads: {threads} then, {threads + 1} now"):
            clf.evaluate(tiny_imdb, split="test", limit=10)
    finally:
        torch.set_num_threads(threads)


def test_weight_average_warms_up():
    from torch.optim.swa_utils import AveragedModel

    from loopynet.train.loop import ema_decay_at, warmed_up_ema
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1) and ema_decay_at(0.999, 500) == pytest.approx(501 / 510)
    assert ema_decay_at(0.999, 10**6) == 0.999
    net = torch.nn.Linear(1, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        net.weight.fill_(1.0)  # the "random initial weights"
    averaged = AveragedModel(net, multi_avg_fn=warmed_up_ema(0.999))
    averaged.update_parameters(net)
    with torch.no_grad():
        net.weight.fill_(0.0)  # what training reached
    for _ in range(500):
        averaged.update_parameters(net)
    initial_share = averaged.module.weight.item()
    expected = float(np.prod([ema_decay_at(0.999, n) for n in range(1, 501)]))
    assert initial_share == pytest.approx(expected, rel=1e-9) and initial_share < 1e-10  # plain 0.999: 0.999**500 = 0.61


def test_kept_epoch_is_in_history_and_patience_needs_validation(tiny_imdb, tiny_vectors, tmp_path, capsys):
    clf = Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), ModelConfig(units=6, maxlen=12),
                           TrainConfig(epochs=4, batch_size=8, lr=5e-3, patience=1, monitor="val_accuracy"),
                           progress=False, log=lambda s: None)
    kept = [h["epoch"] for h in clf.history if h["kept"]]
    assert len(kept) == 1 and clf.history[kept[0] - 1]["val_accuracy"] == max(h["val_accuracy"] for h in clf.history)
    assert _train_cli(tiny_imdb, tiny_vectors, tmp_path / "m", "--val-split", "0", "--patience", "2") == 2
    assert "needs validation data" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_lr_decay_with_one_epoch_warns(tiny_imdb, tiny_vectors):
    with pytest.warns(UserWarning, match="lr_decay 0.5 has no effect with 1 epoch"):
        Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), ModelConfig(units=6, maxlen=12),
                         TrainConfig(epochs=1, batch_size=8, lr_decay=0.5), progress=False, log=lambda s: None)


def test_auc_metrics_equal_brute_force_oracles():
    from loopynet.tasks.classification.metrics import average_precision, balanced_threshold, binary_metrics, roc_auc
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 40))
        labels = rng.integers(0, 2, n)
        if labels.min() == labels.max():
            continue
        p = np.round(rng.random(n), 1)  # many ties
        pos, neg = p[labels == 1], p[labels == 0]
        pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
        assert roc_auc(p, labels) == pytest.approx(pairs / (len(pos) * len(neg)), abs=1e-12)
        thresholds = np.unique(p)[::-1]  # average precision over distinct thresholds, high to low
        tp = np.array([((p >= t) & (labels == 1)).sum() for t in thresholds])
        predicted = np.array([(p >= t).sum() for t in thresholds])
        recall = tp / labels.sum()
        ap = np.sum(np.diff(np.r_[0, recall]) * tp / predicted)
        assert average_precision(p, labels) == pytest.approx(ap, abs=1e-12)
        t, best = balanced_threshold(p, labels)
        grid = [binary_metrics(p, labels, c)["balanced_accuracy"] for c in np.linspace(0, 1, 1001)]
        assert best == pytest.approx(max(grid)) and binary_metrics(p, labels, t)["balanced_accuracy"] == pytest.approx(best)
    metrics = binary_metrics(np.array([0.9, 0.2, 0.3, 0.1]), np.array([1, 0, 0, 0]))
    assert metrics["baseline_accuracy"] == 0.75 and metrics["roc_auc"] == 1.0 and metrics["pr_auc"] == 1.0
    assert binary_metrics(np.array([0.9, 0.2]), np.array([0, 0]))["roc_auc"] is None


def test_validation_split_is_stratified():
    from loopynet.data.prepare import stratified_split
    labels = np.array([1] * 20 + [0] * 80)
    rng = np.random.default_rng(0)
    for seed in range(5):
        shuffled = labels[np.random.default_rng(seed).permutation(100)]
        train, validation = stratified_split(shuffled, 0.2)
        assert shuffled[validation].sum() == 4 and len(validation) == 20 and shuffled[train].sum() == 16
        assert np.array_equal(np.sort(np.r_[train, validation]), np.arange(100))
        first_positives = np.flatnonzero(shuffled == 1)[:16]  # the first 80% of each class, in shuffled order
        assert set(first_positives) <= set(train)
    assert rng is not None


def _imbalanced_corpus(root, positives: int, negatives: int):
    from tests.conftest import make_review
    rng = np.random.default_rng(1)
    for name, n, positive in (("neg", negatives, False), ("pos", positives, True)):
        (root / "train" / name).mkdir(parents=True)
        for i in range(n):
            (root / "train" / name / f"{i}_1.txt").write_text(make_review(rng, positive))
    return root


def test_imbalanced_training_warns_and_threshold_auto_is_saved(tiny_vectors, tmp_path):
    data = _imbalanced_corpus(tmp_path / "data", 15, 85)
    lines = []
    clf = Classifier.train(data, tiny_vectors, DataConfig(), ModelConfig(units=6, maxlen=12),
                           TrainConfig(epochs=2, batch_size=8, lr=5e-3, threshold="auto"), progress=False,
                           log=lines.append)
    assert any(line.startswith("warning: class 'pos' is 15.0% of the training documents") for line in lines), lines
    assert clf.data_report["validation"]["class_counts"] == {"neg": 17, "pos": 3}  # stratified: 20% of each class
    rule = clf.threshold
    assert rule["rule"].startswith("auto") and rule["validation_balanced_accuracy"] >= rule["validation_balanced_accuracy_at_0.5"]
    folder = clf.save(tmp_path / "m")
    loaded = Classifier.load(folder)
    assert loaded.threshold == rule
    p = loaded.predict_proba(TEXTS)
    assert [r["label"] for r in loaded.predict(TEXTS)] == [loaded.class_names[int(x >= rule["value"])] for x in p]
    assert [r["label"] for r in loaded.predict(TEXTS, threshold=0.0)] == ["pos", "pos"]


def _brute_force_best(emissions, start, transitions, end, n):
    import itertools
    K = emissions.shape[1]
    best, best_path = float("-inf"), None
    for path in itertools.product(range(K), repeat=n):
        score = start[path[0]] + end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path))
        score += sum(transitions[a, b] for a, b in zip(path, path[1:]))
        if score > best:
            best, best_path = score, list(path)
    return best_path


def test_constrained_viterbi_equals_brute_force_and_never_breaks_the_scheme():
    from loopynet.data.conll import scheme_tags
    from loopynet.models.tagger import constrained_viterbi
    from loopynet.tasks.tagging.constraints import allowed_transitions, is_valid
    names = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    allowed = allowed_transitions(names, "iobes")
    forbid = lambda a: torch.zeros(a.shape, dtype=torch.float64).masked_fill(~torch.as_tensor(a), float("-inf"))  # noqa: E731
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        emissions = torch.randn(3, 4, 5, generator=g, dtype=torch.float64) * 3
        start, trans, end = (torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, 5, generator=g, dtype=torch.float64),
                             torch.randn(5, generator=g, dtype=torch.float64))
        lengths = torch.tensor([4, 2, 0])
        s, t, e = start + forbid(allowed[0]), trans + forbid(allowed[1]), end + forbid(allowed[2])
        paths = constrained_viterbi(emissions, lengths, s, t, e)
        assert paths[2] == []  # an empty row decodes to empty
        for b in range(2):
            n = int(lengths[b])
            assert paths[b] == _brute_force_best(emissions[b].numpy(), s.numpy(), t.numpy(), e.numpy(), n)
            assert is_valid(paths[b], allowed)
    assert scheme_tags("iobes")[:5] == names


def test_strict_metrics_and_invalid_sequences():
    from loopynet.tasks.tagging.metrics import tag_metrics
    names = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    ix = {n: i for i, n in enumerate(names)}
    true = [[ix["B-PER"], ix["E-PER"]], [ix["O"], ix["S-PER"], ix["O"]]]
    pred = [[ix["S-PER"], ix["E-PER"]], [ix["O"], ix["E-PER"], ix["O"]]]  # both invalid IOBES
    m = tag_metrics(true, pred, names)
    assert m["invalid_sequences"] == 2
    assert m["f1"] == 1.0  # conlleval reads S-PER E-PER as B-PER I-PER and O E-PER as O I-PER: "both right"
    assert m["strict"]["f1"] == 0.0 and m["strict"]["scheme"] == "iobes"


def test_data_report_says_how_many_tokens_maxlen_cut():
    from loopynet.data.report import make_report
    from loopynet.data.tokenized import TokenizedCorpus
    from loopynet.data.vocab import EncodedDocs, OOVCount
    lengths = [3, 12, 15, 30, 0]
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    docs = EncodedDocs(np.ones(offsets[-1], dtype=np.int32), offsets, np.array([0, 1, 0, 1, 0]))
    corpus = TokenizedCorpus(["x"], np.zeros(offsets[-1], dtype=np.int32), offsets, docs.labels, ["neg", "pos"],
                             [f"{i}.txt" for i in range(5)])
    report = make_report("train", docs, OOVCount(int(offsets[-1]), 0), 12, ["neg", "pos"], corpus)
    assert report.truncated_documents == 2  # exactly maxlen tokens is kept whole
    assert report.tokens_cut == {"total": 3 + 18, "min": 3, "median": 10.5, "max": 18}
    assert "cutting 21 tokens, 3-18 per document, median 10.5" in report.line()
    assert report.empty_reasons == {"no tokens": 1, "no token with a vector": 0} and report.empty_files == ["4.txt"]
