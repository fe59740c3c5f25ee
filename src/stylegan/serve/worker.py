"""One inference worker with a bounded queue.

Every request that needs the network becomes a job for a single thread, so that at most one forward pass
runs at a time (memory stays that of one request, whatever the number of clients) and the event loop never
runs torch. Jobs wait in a FIFO of at most ``max_queue`` entries; a job that does not fit is refused at once
with :class:`QueueFull` (the web layer turns it into a 503), instead of piling up.

Batching several requests into one forward pass was left out on purpose: a batched convolution does not give
bit-identical results to a single one, so an image's bytes would depend on what else was in the queue, and
"same seed, same ψ, same PNG" (which browser caching relies on) would no longer hold.
"""
from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable


class QueueFull(RuntimeError):
    """The queue holds ``max_queue`` jobs already."""

    def __init__(self, max_queue: int):
        super().__init__(f"the inference queue is full ({max_queue} requests waiting)")
        self.max_queue = max_queue


class WorkerStopped(RuntimeError):
    """The worker was stopped (the server is shutting down)."""


class InferenceWorker:
    """A thread that runs submitted callables one at a time, in submission order."""

    def __init__(self, max_queue: int = 16, name: str = "stylegan-inference"):
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self.max_queue = max_queue
        self.name = name
        self._jobs: collections.deque[tuple[Future, Callable[..., Any], tuple, dict]] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._running = False
        self.served = 0
        self.failed = 0
        self.rejected = 0
        self.busy_seconds = 0.0

    # -- life cycle -------------------------------------------------------------------------------------------
    def start(self) -> "InferenceWorker":
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """Refuse new jobs, cancel the waiting ones, let the running one finish."""
        with self._cond:
            self._stopping = True
            while self._jobs:
                fut, *_ = self._jobs.popleft()
                if fut.cancel():
                    continue
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- jobs -------------------------------------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args, **kwargs) -> Future:
        """Queue ``fn(*args, **kwargs)``; a Future of its result. Raises QueueFull when the queue is full."""
        fut: Future = Future()
        with self._cond:
            if self._stopping:
                raise WorkerStopped("the server is shutting down")
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            if len(self._jobs) >= self.max_queue:
                self.rejected += 1
                raise QueueFull(self.max_queue)
            self._jobs.append((fut, fn, args, kwargs))
            self._cond.notify()
        return fut

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"queued": len(self._jobs), "running": self._running, "max_queue": self.max_queue,
                    "served": self.served, "failed": self.failed, "rejected": self.rejected,
                    "busy_seconds": round(self.busy_seconds, 3)}

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if self._stopping and not self._jobs:
                    return
                fut, fn, args, kwargs = self._jobs.popleft()
                if not fut.set_running_or_notify_cancel():  # cancelled while waiting
                    continue
                self._running = True
            t0 = time.perf_counter()
            ok = True
            try:
                result = fn(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 - handed to the waiting request, never kills the thread
                ok = False
                fut.set_exception(e)
            else:
                fut.set_result(result)
            finally:
                with self._cond:
                    self._running = False
                    self.busy_seconds += time.perf_counter() - t0
                    if ok:
                        self.served += 1
                    else:
                        self.failed += 1
