"""Prometheus metrics of the server (GET /metrics)."""

from prometheus_client import CollectorRegistry, Counter, Histogram


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
        self.pair_count = Counter("search_pairs", "pairs scored", ["model"], registry=self.registry)
        self.batch_rows = Histogram(
            "search_batch_rows",
            "rows scored per batching round",
            ["model"],
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )

    def pairs(self, model: str, n: int) -> None:
        self.pair_count.labels(model).inc(n)

    def batch(self, model: str, rows: int) -> None:
        self.batch_rows.labels(model).observe(rows)

    def observe(self, endpoint: str, outcome: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, outcome, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
