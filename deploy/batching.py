"""Dynamic batching: concurrent requests' pairs are scored together in one worker thread."""
import queue
import threading
import time
from concurrent.futures import Future


class Batcher:
    """Collects encoded pairs from many requests for up to `max_wait_ms` (or until
    `max_batch_size` pairs are waiting), then also takes whatever else is already queued (up to
    `max_collect` pairs), and scores them in one call of the engine. The engine sorts the rows by
    length and runs them in batches of `max_batch_size`, each padded only to its own longest row,
    so taking the whole queue leaves at most one partial batch per round instead of one per
    request."""

    def __init__(self, engine, max_batch_size=32, max_wait_ms=5, on_batch=None, max_collect=None):
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.max_collect = max_collect or 8 * max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.on_batch = on_batch
        self.queue = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
        self.thread.start()

    def submit(self, encoded):
        fut = Future()
        self.queue.put((encoded, fut))
        return fut

    def score(self, encoded, timeout=120):
        return self.submit(encoded).result(timeout=timeout)

    def _loop(self):
        while True:
            items = [self.queue.get()]
            n = len(items[0][0])
            deadline = time.monotonic() + self.max_wait
            while n < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self.queue.get(timeout=remaining)
                except queue.Empty:
                    break
                items.append(item)
                n += len(item[0])
            while n < self.max_collect:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                items.append(item)
                n += len(item[0])
            rows = [row for encoded, _ in items for row in encoded]
            try:
                scores = self.engine.run_encoded(rows)
            except Exception as e:  # hand the error to every waiting request; keep serving
                for _, fut in items:
                    fut.set_exception(e)
                continue
            if self.on_batch is not None:
                self.on_batch(len(rows), len(items))
            start = 0
            for encoded, fut in items:
                fut.set_result(scores[start : start + len(encoded)])
                start += len(encoded)
