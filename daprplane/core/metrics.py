"""The process's Prometheus registry and its HTTP exporter.

Every series is typed (counter, gauge, histogram): Dapr's own test harness parses the exposition
format with expfmt and drops untyped families. Like Dapr's exporter, any path serves the metrics.
"""

from __future__ import annotations

import prometheus_client
from aiohttp import web
from prometheus_client import CollectorRegistry

# Go's client exports no ``*_created`` series; Dapr's dashboards and tests expect none.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors (Go exposes ``process_*`` too)."""
    registry = CollectorRegistry(auto_describe=True)
    prometheus_client.ProcessCollector(registry=registry)
    prometheus_client.PlatformCollector(registry=registry)
    prometheus_client.GCCollector(registry=registry)
    return registry


def application(registry: CollectorRegistry) -> web.Application:
    async def exposition(_: web.Request) -> web.Response:
        body = prometheus_client.generate_latest(registry)
        return web.Response(
            body=body, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", exposition)
    return app
