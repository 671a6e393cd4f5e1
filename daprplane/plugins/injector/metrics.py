"""The injector's three ``dapr_injector_*`` counters (Dapr ``pkg/injector/service/metrics.go``).

``requests_total`` counts every ``/mutate`` call; ``succeeded_total{app_id}`` every non-empty
patch; ``failed_total{app_id,reason}`` every review answered without one for a reason Dapr counts:
``pod_patch`` (not a pod, or an unauthorised user), ``patch`` (the patch could not be built),
``response`` and ``write_response`` (the answer could not be encoded or sent).

Dapr has no plugins; ``daprplane_injector_plugin_failures_total{plugin}`` counts the failures of
injector plugins by plugin name, whatever the failure policy made of them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class InjectorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "dapr_injector_sidecar_injection_requests",
            "The total number of sidecar injection requests.",
            registry=registry,
        )
        self.succeeded = Counter(
            "dapr_injector_sidecar_injection_succeeded",
            "The total number of successful sidecar injections.",
            ["app_id"],
            registry=registry,
        )
        self.failed = Counter(
            "dapr_injector_sidecar_injection_failed",
            "The total number of failed sidecar injections.",
            ["app_id", "reason"],
            registry=registry,
        )

        self.plugin_failures = Counter(
            "daprplane_injector_plugin_failures",
            "The total number of failed injector plugin hook calls, by plugin.",
            ["plugin"],
            registry=registry,
        )

    def request(self) -> None:
        self.requests.inc()

    def success(self, app_id: str) -> None:
        self.succeeded.labels(app_id).inc()

    def failure(self, app_id: str, reason: str) -> None:
        self.failed.labels(app_id, reason).inc()

    def plugin_failure(self, plugin: str) -> None:
        self.plugin_failures.labels(plugin).inc()
