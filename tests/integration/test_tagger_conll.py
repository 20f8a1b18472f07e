"""The tagger on real CoNLL-2003 data with the real 50-d GloVe vectors: a small slice learns more than
the majority tag; the full run of the documented recipe (slow, ~10-14 min CPU on one core) keeps its bar."""

from __future__ import annotations

import pytest
from conftest import GLOVE_50D, GLOVE_50D_CONLL, SHARED_DATA

from loopynet.config import TrainConfig
from loopynet.data.conll import read_split
from loopynet.config import TaggerConfig, TaggerDataConfig
from loopynet.tasks.tagging.api import Tagger
from loopynet.tasks.tagging.metrics import majority_accuracy

CONLL = SHARED_DATA / "conll2003"


pytestmark = pytest.mark.usefixtures("one_thread")


def test_small_real_slice_beats_the_majority_tag():
    assert CONLL.is_dir() and GLOVE_50D.is_file(), "shared CoNLL data or GloVe vectors missing"
    tagger = Tagger.train(CONLL, GLOVE_50D, TaggerDataConfig(limit=500, validation_limit=150),
                          TaggerConfig(units=32, dropout=0.1, char_filters=0, crf=False),
                          TrainConfig(epochs=3, optimizer="adam", lr=1e-2, batch_size=32, clip_norm=5.0, seed=0),
                          progress=False, log=lambda s: None)
    metrics = tagger.evaluate("test", limit=300)
    docs = tagger._encode(read_split(CONLL, "test")[:300])
    baseline = majority_accuracy(docs)  # always "O": entity F1 0
    assert 0.7 < baseline < 0.9
    assert metrics["token_accuracy"] > baseline + 0.05, (metrics["token_accuracy"], baseline, metrics["f1"])
    assert metrics["f1"] > 0.3, metrics
    assert tagger.history[-1]["val_f1"] > tagger.history[0]["val_f1"]


@pytest.mark.slow
def test_full_run_reaches_the_recipes_bar():
    """The documented recipe (docs/tagger.md, issue 19): the defaults with the CoNLL-filtered 50-d GloVe
    vectors. Measured test entity F1 0.9042 with seed 0 (seeds 0-2 in benchmarks/results/tagger_recipes.json);
    the bar, 0.90, leaves a margin for another machine's float order. Issue 19's 0.91 is not reached."""
    tagger = Tagger.train(CONLL, GLOVE_50D_CONLL, progress=False)
    metrics = tagger.evaluate("test")
    assert metrics["f1"] >= 0.90 and metrics["strict"]["f1"] >= 0.90, metrics


def _short_run(seed: int, ema_decay: float | None) -> tuple[float, dict]:
    """Test F1 of the default tagger trained on 2,000 sentences for 8 epochs (no early stopping), and
    its last epoch's history record."""
    from loopynet.config import tagger_train_config
    overrides = {"epochs": 8, "patience": None, "seed": seed}
    if ema_decay is not None:
        overrides["ema_decay"] = ema_decay
    tagger = Tagger.train(CONLL, GLOVE_50D, TaggerDataConfig(limit=2000), None, tagger_train_config(**overrides),
                          progress=False, log=lambda s: None)
    return tagger.evaluate("test")["f1"], tagger.history[-1]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_weight_average_is_no_worse_than_none_on_a_short_run(seed):
    """Issue: with the un-warmed 0.999 average a 2,000-sentence, 8-epoch run scored F1 0.11 against 0.77
    without averaging; the warmed-up average (`loopynet.train.loop.ema_decay_at`), kept only where it
    validates better than the plain weights (`loopynet.train.loop._validate`), must be at least as good."""
    (averaged, last), (plain, plain_last) = _short_run(seed, None), _short_run(seed, 0.0)
    print(f"seed {seed}: test F1 default {averaged:.4f}, --ema-decay 0 {plain:.4f}; val F1 default "
          f"{last['val_f1']:.4f} ({last['weights']} weights kept; val_loss averaged {last['val_loss_averaged']:.4f}, "
          f"plain {last['val_loss_plain']:.4f}), --ema-decay 0 {plain_last['val_f1']:.4f} "
          f"(val_loss {plain_last['val_loss']:.4f})")
    assert last["val_loss"] <= plain_last["val_loss"]
    assert averaged >= plain, (averaged, plain)
