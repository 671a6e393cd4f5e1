"""The operator's ``dapr_operator_*`` counters and daprplane's stream gauge.

Dapr defines ``service_deleted_total`` but never records it (the operator never deletes a
Service); it is kept so dashboards built for Dapr find the series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.created = Counter(
            "dapr_operator_service_created",
            "The total number of dapr services created.",
            ["app_id"],
            registry=registry,
        )
        self.updated = Counter(
            "dapr_operator_service_updated",
            "The total number of dapr services updated.",
            ["app_id"],
            registry=registry,
        )
        self.deleted = Counter(
            "dapr_operator_service_deleted",
            "The total number of dapr services deleted.",
            ["app_id"],
            registry=registry,
        )
        self.streams = Gauge(
            "daprplane_operator_update_streams",
            "Open update streams, by kind.",
            ["kind"],
            registry=registry,
        )

    def service_created(self, app_id: str) -> None:
        self.created.labels(app_id).inc()

    def service_updated(self, app_id: str) -> None:
        self.updated.labels(app_id).inc()
