"""loopynet.train.loop.optimizer_step: small optimizer steps run on one torch thread (the same values,
the thread count restored); which optimizers qualify (issue 17: RMSprop over the book network's 37,551
weights took 435 us on 2 threads and 99 us on one)."""

from __future__ import annotations

import pytest
import torch

from loopynet.config import ModelConfig, TrainConfig
from loopynet.models.classifier import BookClassifier
from loopynet.train.loop import ONE_THREAD_STEP_ELEMENTS, make_optimizer, optimizer_step, steps_on_one_thread


def test_the_book_network_steps_on_one_thread_and_a_large_tensor_does_not():
    book = BookClassifier(ModelConfig(), torch.zeros(10, 300))
    assert sum(p.numel() for p in book.parameters() if p.requires_grad) == 37_551
    assert steps_on_one_thread(make_optimizer(book, TrainConfig()))
    small = torch.zeros(ONE_THREAD_STEP_ELEMENTS - 1, requires_grad=True)
    large = torch.zeros(ONE_THREAD_STEP_ELEMENTS, requires_grad=True)
    assert steps_on_one_thread(torch.optim.RMSprop([small]))
    assert not steps_on_one_thread(torch.optim.RMSprop([small, large]))


class RecordingRMSprop(torch.optim.RMSprop):
    """RMSprop that records the torch thread count each step ran under."""

    def __init__(self, params):
        super().__init__(params, lr=1e-3, alpha=0.9, eps=1e-7)
        self.threads_seen: list[int] = []

    def step(self, closure=None):
        self.threads_seen.append(torch.get_num_threads())
        return super().step(closure)


def test_one_thread_steps_give_the_same_bits_and_restore_the_thread_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        generator = torch.Generator().manual_seed(0)
        shapes = [(300, 50), (50, 50), (50,), (20_000, 1), (1,)]
        start = [torch.randn(shape, generator=generator) for shape in shapes]
        grads = [[torch.randn(shape, generator=generator) for shape in shapes] for _ in range(4)]
        results = {}
        for one_thread in (False, True):
            params = [p.clone().requires_grad_(True) for p in start]
            optimizer = RecordingRMSprop(params)
            for step_grads in grads:
                for p, g in zip(params, step_grads):
                    p.grad = g.clone()
                optimizer_step(optimizer, one_thread)
                assert torch.get_num_threads() == 2
            results[one_thread] = (params, optimizer.threads_seen)
        assert results[False][1] == [2] * 4 and results[True][1] == [1] * 4
        for plain, single in zip(results[False][0], results[True][0]):
            assert torch.equal(plain, single)
    finally:
        torch.set_num_threads(before)


def test_a_failing_step_still_restores_the_thread_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)

    class Failing(torch.optim.SGD):
        def step(self, closure=None):
            raise RuntimeError("step failed")

    try:
        optimizer = Failing([torch.zeros(3, requires_grad=True)], lr=0.1)
        with pytest.raises(RuntimeError, match="step failed"):
            optimizer_step(optimizer, True)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
