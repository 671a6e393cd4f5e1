"""The process's Prometheus registry and its HTTP exporter.

Every series is typed (counter, gauge, histogram): Dapr's own test harness parses the exposition
format with expfmt and drops untyped families. Like Dapr's exporter, any path serves the metrics.
The port is served by :mod:`daprplane.core.httpserver` (see there why not aiohttp).
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import CollectorRegistry

from daprplane.core import httpserver

# Go's client exports no ``*_created`` series; Dapr's dashboards and tests expect none.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors (Go exposes ``process_*`` too)."""
    registry = CollectorRegistry(auto_describe=True)
    prometheus_client.ProcessCollector(registry=registry)
    prometheus_client.PlatformCollector(registry=registry)
    prometheus_client.GCCollector(registry=registry)
    return registry


def application(registry: CollectorRegistry) -> httpserver.Application:
    async def exposition(_: httpserver.Request) -> httpserver.Response:
        return httpserver.Response(
            body=prometheus_client.generate_latest(registry),
            content_type=prometheus_client.CONTENT_TYPE_LATEST,
        )

    app = httpserver.Application()
    app.add_fallback("GET", exposition)
    return app
