"""The batcher in front of an engine: a lone request runs at once; requests on their way are batched."""

import threading
import time

import numpy as np
import pytest
from conftest import PAIRS

from deploy.batching import Batcher


@pytest.fixture
def batcher(served):
    """A batcher that would wait 3 s for company, and the number of requests in each engine call."""
    batches = []
    b = Batcher(served["engine"], max_batch_size=32, max_wait_ms=3000, on_batch=lambda rows, reqs: batches.append(reqs))
    yield b, batches
    b.stop()


def test_a_lone_request_does_not_wait_for_max_wait_ms(served, batcher):
    engine = served["engine"]
    b, _ = batcher
    encoded = engine.encode(PAIRS)
    b.run(encoded, time.monotonic() + 60)  # warm-up
    t0 = time.monotonic()
    out = b.run(encoded, time.monotonic() + 60)
    assert time.monotonic() - t0 < 1.5  # far below the 3 s it would wait for company
    np.testing.assert_allclose(out, engine.score(PAIRS), atol=1e-6)


def test_a_request_being_tokenized_joins_the_batch(served, batcher):
    engine = served["engine"]
    b, batches = batcher
    encoded = engine.encode(PAIRS)
    inside, release, results = threading.Event(), threading.Event(), {}

    def late():
        with b.arriving() as submit:  # received, still tokenizing when the first request is queued
            inside.set()
            release.wait(10)
            fut = submit(encoded)
        results["late"] = b.wait(fut, time.monotonic() + 60)

    t = threading.Thread(target=late)
    t.start()
    inside.wait(10)
    first = b.submit(encoded)
    time.sleep(0.3)  # the worker holds the first request while the other is on its way
    queued = [b.submit(encoded) for _ in range(3)]  # these queue behind it and join the same call
    release.set()
    results["first"] = b.wait(first, time.monotonic() + 60)
    t.join(30)
    assert batches == [5], batches  # one engine call for all five requests
    for fut in queued:
        np.testing.assert_allclose(b.wait(fut, time.monotonic() + 60), results["first"], atol=1e-6)
    np.testing.assert_allclose(results["late"], results["first"], atol=1e-6)
