"""The placement service's Prometheus series (Dapr ``pkg/placement/monitoring``).

All four are gauges, as Dapr's LastValue views export them; the two leadership gauges exist
(at 0) from start-up on every node, and a namespace's runtime counts fall back to 0, not away,
when its last stream leaves.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge


class PlacementMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runtimes = Gauge(
            "dapr_placement_runtimes_total",
            "The total number of runtimes reported to placement service.",
            ["host_namespace"],
            registry=registry,
        )
        self.actor_runtimes = Gauge(
            "dapr_placement_actor_runtimes_total",
            "The total number of actor runtimes reported to placement service.",
            ["host_namespace"],
            registry=registry,
        )
        self.leader_status = Gauge(
            "dapr_placement_leader_status",
            "Leader status of the placement node: 1 for leader, 0 otherwise.",
            registry=registry,
        )
        self.raft_leader_status = Gauge(
            "dapr_placement_raft_leader_status",
            "Raft leader status of the placement node: 1 for leader, 0 otherwise.",
            registry=registry,
        )
        self.set_leader(False)

    def set_leader(self, leader: bool) -> None:
        self.leader_status.set(int(leader))
        self.raft_leader_status.set(int(leader))

    def streams_changed(self, namespace: str, runtimes: int, actor_runtimes: int) -> None:
        # Deltas, not absolute values: a retiring namespace's loop and its successor may both
        # report for a moment, and their deltas still add up.
        self.runtimes.labels(namespace).inc(runtimes)
        self.actor_runtimes.labels(namespace).inc(actor_runtimes)
