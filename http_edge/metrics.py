"""Prometheus metrics (prometheus_client): HTTP counts and latency by route,
plus the kernel's counters read from the store at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from oxios_actors.agents.records import read_counters
from oxios_actors.events import log as event_log

if TYPE_CHECKING:
    from .app import Edge

disable_created_metrics()  # the *_created series only add noise to every scrape

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class KernelCollector:
    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    def collect(self) -> Iterator[Metric]:
        counters = read_counters(self.edge.store)
        for name, help_text in (("forked", "Total agents forked"),
                                ("completed", "Total agents completed"),
                                ("failed", "Total agents failed")):
            yield CounterMetricFamily(f"oxios_agents_{name}", help_text, value=counters[name])
        yield GaugeMetricFamily("oxios_agents_active", "Agents running now", value=counters["active"])
        yield CounterMetricFamily("oxios_events", "Events appended to the event log",
                                  value=event_log.last_seq(self.edge.store))
        yield GaugeMetricFamily("oxios_sse_clients", "Connected SSE clients",
                                value=len(self.edge.fanout.clients) if self.edge.fanout else 0)
        yield CounterMetricFamily("oxios_auth_failures", "Rejected authentication attempts",
                                  value=self.edge.failed_auth)
        yield GaugeMetricFamily("oxios_uptime_seconds", "Seconds since the edge started",
                                value=self.edge.uptime())


class EdgeMetrics:
    def __init__(self, edge: Edge) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("oxios_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("oxios_http_request_duration_seconds", "HTTP request latency by route",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(KernelCollector(edge))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
