"""Prometheus metrics of the server (GET /metrics)."""

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "search_requests",
            "requests by endpoint and outcome (ok, or the error kind)",
            ["endpoint", "outcome", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "search_request_seconds",
            "request latency",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.in_flight_requests = Gauge(
            "search_requests_in_flight",
            "requests received and not yet answered, by endpoint",
            ["endpoint"],
            registry=self.registry,
        )
        self.queue_rows = Gauge(
            "search_queue_rows",
            "rows waiting in a model's batching queue (max_queue_rows refuses more)",
            ["model"],
            registry=self.registry,
        )
        self.pair_count = Counter("search_pairs", "pairs scored", ["model"], registry=self.registry)
        self.batch_rows = Histogram(
            "search_batch_rows",
            "rows scored per batching round",
            ["model"],
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )

    def in_flight(self, endpoint: str):
        """A context manager around one request: search_requests_in_flight{endpoint} counts it while inside."""
        return self.in_flight_requests.labels(endpoint).track_inprogress()

    def watch_queue(self, model: str, rows: Callable[[], int]) -> None:
        """search_queue_rows{model} reads rows() whenever /metrics is scraped."""
        self.queue_rows.labels(model).set_function(rows)

    def pairs(self, model: str, n: int) -> None:
        self.pair_count.labels(model).inc(n)

    def batch(self, model: str, rows: int) -> None:
        self.batch_rows.labels(model).observe(rows)

    def observe(self, endpoint: str, outcome: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, outcome, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
