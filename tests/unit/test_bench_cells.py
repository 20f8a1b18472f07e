"""benchmarks/bench_cells.py: the peer cross-check's network is the independent script's (dropout after the max),
the baselines' is loopynet's (dropout on every step's outputs, before the max)."""

import pytest
import torch
import torch.nn.functional as F

from tests.benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_cells")


def networks(bench):
    table = torch.randn(30, 300)
    table[0] = 0
    torch.manual_seed(0)
    before = bench.ObviousClassifier("lstm", table, packed=False)
    torch.manual_seed(0)
    after = bench.ObviousClassifier("lstm", table, packed=False, dropout_after_pool=True)
    return before, after


def test_dropout_after_pool_is_dropout_on_the_pooled_features(bench):
    before, after = networks(bench)
    ids = torch.tensor([[3, 4, 5, 0], [6, 7, 8, 9]])
    before.eval(), after.eval()
    assert torch.equal(before(ids), after(ids))  # the same weights and, without dropout, the same network
    after.train()
    out, _ = after.rnn(after.embedding(ids))
    mask = (torch.arange(4) < torch.tensor([3, 4]).unsqueeze(1)).unsqueeze(2)
    pooled = out.masked_fill(~mask, float("-inf")).amax(1)  # (B, 2H)
    torch.manual_seed(5)
    expected = after.dense(F.dropout(pooled, after.dropout.p, True)).squeeze(1)
    torch.manual_seed(5)
    assert torch.allclose(after(ids), expected, atol=1e-6)
    torch.manual_seed(5)
    assert not torch.allclose(before.train()(ids), expected, atol=1e-6)  # the baselines drop before the max
