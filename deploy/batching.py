"""The queue in front of an engine: concurrent requests' rows are run together by one worker thread.

The queue is bounded (`max_queue_rows` rows waiting; more gets `Overloaded`, 503 with
Retry-After) and every wait is bounded by the request's deadline (`DeadlineExceeded`, 504); a
request that gave up before its turn is dropped from the queue without running.
"""

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np

from core.errors import DeadlineExceeded, Overloaded
from core.interfaces import BatchEngine, Encoded

_STOP = object()


class Batcher:
    """Collects encoded rows from many requests, then runs them in one call of `engine.run_encoded`.
    It takes whatever is queued (up to `max_collect` rows) and waits up to `max_wait_ms` for more only
    while fewer than `max_batch_size` rows are taken and other requests are on their way (received and
    being tokenized, see `arriving`): a lone client's request runs at once, with no wait. The engine
    sorts the rows by length and runs them in batches of `max_batch_size`, each padded only to its own
    longest row, so taking the whole queue leaves at most one partial batch per round instead of one per request."""

    def __init__(
        self,
        engine: BatchEngine,
        max_batch_size: int = 32,
        max_wait_ms: float = 5,
        max_queue_rows: int = 4096,
        on_batch: Callable[[int, int], None] | None = None,
        max_collect: int | None = None,
    ):
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.max_collect = max_collect or 8 * max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue_rows = max_queue_rows
        self.on_batch = on_batch
        self.queue = queue.Queue()
        self._pending = 0  # rows queued and not yet taken by the worker
        self._arriving = 0  # requests received and not yet submitted (being checked and tokenized)
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
        self.thread.start()

    @contextlib.contextmanager
    def arriving(self):
        """Around a request's work before it is submitted (checks, tokenizing): while any request is
        inside, the worker may wait up to max_wait_ms to batch it with what is queued. Yields the
        request's `submit`, which leaves the arriving count as it queues the rows."""
        state = {"arriving": True}
        with self._lock:
            self._arriving += 1

        def submit(rows):
            return self.submit(rows, _state=state)

        try:
            yield submit
        finally:
            with self._lock:
                if state["arriving"]:
                    self._arriving -= 1

    def submit(self, rows: Sequence[Encoded], _state: dict | None = None) -> Future:
        with self._lock:
            if self._pending + len(rows) > self.max_queue_rows:
                raise Overloaded(
                    f"the server is busy: {self._pending} rows are waiting to be scored "
                    f"(max_queue_rows {self.max_queue_rows}); retry later"
                )
            self._pending += len(rows)
            if _state is not None and _state["arriving"]:
                _state["arriving"] = False
                self._arriving -= 1
            fut = Future()
            self.queue.put((rows, fut))  # under the lock: a worker never sees it queued and still arriving
        return fut

    @property
    def queued_rows(self) -> int:
        """Rows submitted and not yet taken by the worker."""
        return self._pending

    def run(self, rows: Sequence[Encoded], deadline: float) -> np.ndarray:
        """Rows -> outputs, or DeadlineExceeded once time.monotonic() passes `deadline`."""
        return self.wait(self.submit(rows), deadline)

    def wait(self, fut: Future, deadline: float) -> np.ndarray:
        """The outputs of a submitted request, or DeadlineExceeded once time.monotonic() passes `deadline`."""
        try:
            return fut.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            fut.cancel()  # if it has not started, the worker skips it
            raise DeadlineExceeded(
                "the request did not finish within its deadline (request_timeout_s in the server config)"
            ) from None

    def stop(self, timeout: float = 10) -> None:
        self.queue.put(_STOP)
        self.thread.join(timeout)

    def _take(self, item):
        with self._lock:
            self._pending -= len(item[0])
        return item

    def _loop(self):
        while True:
            first = self.queue.get()
            if first is _STOP:
                return
            items = [self._take(first)]
            n = len(first[0])
            deadline = time.monotonic() + self.max_wait
            stopping = False
            while n < self.max_collect:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if n >= self.max_batch_size or remaining <= 0 or self._arriving == 0:
                        break
                    try:  # a request is being tokenized: give it a moment to join this batch
                        item = self.queue.get(timeout=min(remaining, 0.001))
                    except queue.Empty:
                        continue
                if item is _STOP:
                    stopping = True
                    break
                items.append(self._take(item))
                n += len(item[0])
            items = [(rows, fut) for rows, fut in items if fut.set_running_or_notify_cancel()]
            if items:
                self._run(items)
            if stopping:
                return

    def _run(self, items):
        rows = [row for encoded, _ in items for row in encoded]
        try:
            outputs = self.engine.run_encoded(rows)
        except Exception as e:  # noqa: BLE001 - hand the error to every waiting request; keep serving
            for _, fut in items:
                fut.set_exception(e)
            return
        if self.on_batch is not None:
            self.on_batch(len(rows), len(items))
        start = 0
        for encoded, fut in items:
            fut.set_result(outputs[start : start + len(encoded)])
            start += len(encoded)
