"""benchmarks/tagger_ensemble.py: the ensemble's tag sequence maximises the taggers' mean CRF score, checked
by enumerating every tag sequence of tiny sentences; N copies of one tagger tag as that tagger does."""

from __future__ import annotations

import itertools

import torch

from loopynet.config import TaggerConfig, TaggerDataConfig, tagger_train_config
from loopynet.data.conll import Sentence, scheme_tags, with_scheme
from loopynet.data.indexes import CharIndex, WordIndex
from loopynet.models.tagger import SequenceTagger
from loopynet.tasks.tagging.api import Tagger
from loopynet.tasks.tagging.constraints import allowed_transitions, is_valid
from loopynet.tasks.tagging.encoding import encode_sentences, pad_batch
from loopynet.tasks.tagging.task import TaggingTask

from tests.benchmark_scripts import load_benchmark

SENTS = with_scheme([Sentence(["EU", "rejects", "German"], ["x"] * 3, ["x"] * 3, ["B-ORG", "O", "B-MISC"]),
                     Sentence(["Peter", "Blackburn"], ["x"] * 2, ["x"] * 2, ["B-PER", "I-PER"])], "iobes")


def load_bench():
    return load_benchmark("tagger_ensemble")


def tagger(seed: int) -> Tagger:
    words, chars, names = WordIndex(["<pad>", "<unk>", "eu", "german", "peter"]), CharIndex.from_sentences(SENTS), \
        scheme_tags("iobes")
    config = TaggerConfig(units=3, casing_dims=2, char_dims=3, char_filters=2, vocab_size=5, embedding_dims=4,
                          num_chars=len(chars.chars), num_tags=len(names))
    model = SequenceTagger(config, torch.randn(5, 4, generator=torch.Generator().manual_seed(seed)), seed=seed)
    with torch.no_grad():  # CRF scores far from pytorch-crf's small initial ones, so the taggers disagree
        for p in model.crf.parameters():
            p.normal_(0, 2, generator=torch.Generator().manual_seed(seed + 10))
    model.constrain(*allowed_transitions(names, "iobes"))
    return Tagger(model.eval(), words, chars, names, TaggerDataConfig(), tagger_train_config(), {})


def crf_scores(taggers, index: int) -> list[tuple]:
    """Per tagger (emissions (T, K), start, transitions, end) as NumPy arrays, for sentence `index`."""
    out = []
    for t in taggers:
        docs = encode_sentences(SENTS, t.words, t.chars, t.tag_names)
        words, cases, chars, lengths, _ = (torch.from_numpy(a) for a in pad_batch(docs, [index]))
        crf = t.model.crf
        out.append(tuple(x.detach().numpy() for x in (t.model(words, cases, chars, lengths)[0], crf.start_transitions,
                                                       crf.transitions, crf.end_transitions)))
    return out


def mean_score(scores, path: tuple[int, ...]) -> float:
    """The mean over taggers of the CRF score of `path` (Lafferty et al. 2001)."""
    return sum(start[path[0]] + end[path[-1]] + sum(e[i, k] for i, k in enumerate(path))
               + sum(transitions[a, b] for a, b in zip(path, path[1:]))
               for e, start, transitions, end in scores) / len(scores)


def test_the_ensemble_path_maximises_the_mean_crf_score_among_valid_paths():
    bench, taggers = load_bench(), [tagger(0), tagger(1), tagger(2)]
    predictions = bench.ensemble_predictions(taggers, SENTS)
    allowed = allowed_transitions(taggers[0].tag_names, "iobes")
    K = len(taggers[0].tag_names)
    for index, sentence in enumerate(SENTS):
        valid = [p for p in itertools.product(range(K), repeat=len(sentence.tokens)) if is_valid(list(p), allowed)]
        scores = crf_scores(taggers, index)
        best = max(valid, key=lambda p: mean_score(scores, p))
        assert predictions[index] == list(best)
    singles = [TaggingTask(t.tag_names).predict(t.model, encode_sentences(SENTS, t.words, t.chars, t.tag_names))[0]
               for t in taggers]
    assert len({str(s) for s in singles}) > 1  # the taggers disagree somewhere: the check is not trivial


def test_copies_of_one_tagger_tag_as_that_tagger():
    one = tagger(3)
    expected, _ = TaggingTask(one.tag_names).predict(one.model, encode_sentences(SENTS, one.words, one.chars,
                                                                                 one.tag_names))
    assert load_bench().ensemble_predictions([one, one, one], SENTS) == expected
