"""Micro-batching: requests that arrive within a few milliseconds share one forward pass.

A forward pass over 32 texts costs far less than 32 passes over one (the per-call overhead and the
matrix products' efficiency: benchmarks/bench_serve.py measures it), so concurrent requests are queued
and run together. One `MicroBatcher` per model and operation; all of them hand their batches to one
worker thread (the `executor`), so the event loop never runs inference.

Rules: the queue holds at most `max_queue_texts` texts (waiting or running); a request that would
overflow it raises `QueueFull` at once (the service answers 503 with Retry-After). A batch takes whole
requests in arrival order while they fit in `max_batch_texts` (a larger request runs alone) and waits
at most `max_wait_s` after its first request for more. With `batching=False` every request is its own
forward pass (the baseline of the benchmark).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from concurrent.futures import Executor


class QueueFull(Exception):
    """The queue cannot take a request's texts now; retry after `retry_after` seconds."""

    def __init__(self, pending: int, limit: int, retry_after: int = 1):
        super().__init__(f"the inference queue is full ({pending:,} texts pending, limit {limit:,}); "
                         f"retry after {retry_after} s")
        self.retry_after = retry_after


class MicroBatcher:
    """Collects (texts, future) requests and answers each with (its results, the forward pass' batch size).

    `run_batch(texts) -> results` (one result per text) runs in `executor`.
    """

    def __init__(self, run_batch: Callable[[list], list], executor: Executor, max_batch_texts: int = 64,
                 max_wait_s: float = 0.005, max_queue_texts: int = 1000, batching: bool = True):
        if max_batch_texts < 1 or max_queue_texts < 1 or max_wait_s < 0:
            raise ValueError("max_batch_texts and max_queue_texts must be >= 1 and max_wait_s >= 0")
        self.run_batch, self.executor = run_batch, executor
        self.max_batch_texts, self.max_wait_s = max_batch_texts, max_wait_s
        self.max_queue_texts, self.batching = max_queue_texts, batching
        self.pending = 0  # texts waiting or in the running batch
        self._queue: collections.deque = collections.deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, texts: list) -> tuple[list, int]:
        """(results for `texts`, size of the batch they ran in).

        Raises:
            QueueFull: the queue would exceed max_queue_texts.
            Exception: whatever run_batch raised for the batch.
        """
        if self.pending + len(texts) > self.max_queue_texts:
            raise QueueFull(self.pending, self.max_queue_texts)
        future = asyncio.get_running_loop().create_future()
        self.pending += len(texts)
        self._queue.append((texts, future))
        self._arrived.set()
        return await asyncio.shield(future)  # a request whose client left does not cancel its batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            if not self._queue:
                self._arrived.clear()
                continue
            batch = await self._collect(loop)
            texts = [t for items, _ in batch for t in items]
            try:
                results, error = await loop.run_in_executor(self.executor, self.run_batch, texts), None
            except Exception as err:  # answered to every request of the batch
                results, error = None, err
            self.pending -= len(texts)
            offset = 0
            for items, future in batch:
                if not future.done():
                    if error is None:
                        future.set_result((results[offset : offset + len(items)], len(texts)))
                    else:
                        future.set_exception(error)
                offset += len(items)

    async def _collect(self, loop) -> list:
        """Whole requests from the queue: one without batching, else while they fit, for at most max_wait_s."""
        batch = [self._queue.popleft()]
        size = len(batch[0][0])
        deadline = loop.time() + self.max_wait_s
        while self.batching:
            while self._queue and size + len(self._queue[0][0]) <= self.max_batch_texts:
                batch.append(self._queue.popleft())
                size += len(batch[-1][0])
            remaining = deadline - loop.time()
            if self._queue or size >= self.max_batch_texts or remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
        if not self._queue:
            self._arrived.clear()
        return batch
