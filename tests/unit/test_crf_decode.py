"""NumPy Viterbi with the tag scheme's forbidden transitions: against a brute-force search over every
path (the oracle), against pytorch-crf without constraints, and the schemes' rules on tag names."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from loopynet.export.crf import allowed_transitions, viterbi

IOBES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
IOB2 = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def brute_force(emissions, start, transitions, end, allowed):
    """The best path among all K^n paths that the masks allow."""
    ok_start, ok_trans, ok_end = allowed
    best, best_path = -np.inf, None
    for path in itertools.product(range(emissions.shape[1]), repeat=emissions.shape[0]):
        if not (ok_start[path[0]] and ok_end[path[-1]] and all(ok_trans[a, b] for a, b in zip(path, path[1:]))):
            continue
        score = start[path[0]] + end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path))
        score += sum(transitions[a, b] for a, b in zip(path, path[1:]))
        if score > best:
            best, best_path = score, list(path)
    return best_path


@pytest.mark.parametrize("tags, scheme", [(IOB2, "iob2"), (IOBES[:5], "iobes")])
def test_constrained_viterbi_equals_the_brute_force_oracle(tags, scheme):
    rng = np.random.default_rng(0)
    allowed = allowed_transitions(tags, scheme)
    K = len(tags)
    for n in (1, 2, 3, 5):
        for _ in range(10):
            emissions, transitions = rng.normal(0, 2, (n, K)), rng.normal(0, 2, (K, K))
            start, end = rng.normal(0, 1, K), rng.normal(0, 1, K)
            transitions[0, 2] = 50.0  # O -> I-PER: what a badly trained CRF may love; still forbidden
            assert viterbi(emissions, start, transitions, end, allowed) == brute_force(emissions, start, transitions,
                                                                                       end, allowed)


def test_unconstrained_viterbi_equals_pytorch_crf():
    from torchcrf import CRF

    torch.manual_seed(0)
    crf = CRF(5, batch_first=True)
    emissions = torch.randn(3, 7, 5)
    lengths = [7, 4, 1]
    mask = torch.arange(7)[None, :] < torch.tensor(lengths)[:, None]
    expected = crf.decode(emissions, mask=mask)
    params = [getattr(crf, n).detach().numpy() for n in ("start_transitions", "transitions", "end_transitions")]
    assert [viterbi(emissions[b, :n].numpy(), *params) for b, n in enumerate(lengths)] == expected
    assert viterbi(np.zeros((0, 5)), *params) == []


def test_scheme_rules():
    start, trans, end = allowed_transitions(IOBES, "iobes")
    ix = {t: i for i, t in enumerate(IOBES)}
    allowed = {(a, b) for a in IOBES for b in IOBES if trans[ix[a], ix[b]]}
    assert ("B-PER", "I-PER") in allowed and ("B-PER", "E-PER") in allowed and ("I-PER", "E-PER") in allowed
    assert ("B-PER", "O") not in allowed and ("B-PER", "I-LOC") not in allowed and ("O", "I-PER") not in allowed
    assert ("E-PER", "B-LOC") in allowed and ("S-PER", "S-LOC") in allowed and ("O", "E-PER") not in allowed
    assert [t for t in IOBES if start[ix[t]]] == ["O", "B-PER", "S-PER", "B-LOC", "S-LOC"]
    assert [t for t in IOBES if end[ix[t]]] == ["O", "E-PER", "S-PER", "E-LOC", "S-LOC"]
    start, trans, end = allowed_transitions(IOB2, "iob2")
    ix = {t: i for i, t in enumerate(IOB2)}
    assert trans[ix["B-PER"], ix["I-PER"]] and trans[ix["I-PER"], ix["I-PER"]] and not trans[ix["O"], ix["I-PER"]]
    assert not trans[ix["B-LOC"], ix["I-PER"]] and trans[ix["I-PER"], ix["B-LOC"]] and end.all()
    assert not start[ix["I-LOC"]] and start[ix["B-LOC"]]
    with pytest.raises(ValueError, match="tag scheme must be one of"):
        allowed_transitions(IOB2, "bilou")
