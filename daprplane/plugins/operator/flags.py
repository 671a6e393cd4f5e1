"""Command-line flags of the operator (``cmd/operator/options/options.go``).

The logging, metrics and healthz flags every component shares are defined by core, not here.
``--kubeconfig`` is not Dapr's own: controller-runtime registers it, and Dapr's test framework
passes it.

Flags Dapr parses but ignores:

- ``--metrics-listen-address`` (core): Dapr binds the exporter to every interface. We honour it.
- ``--healthz-listen-address`` (core): honoured only by newer Dapr releases. We honour it.

Flags Dapr honours and we accept but ignore (their help says so): ``--cache-sync-period`` (see
``docs/compat.md``) and ``--enable-argo-rollout-service-reconciler`` (no Rollout controller).
"""

from __future__ import annotations

from daprplane.core.flags import Flag, boolean, duration, integer, string

FLAGS: tuple[Flag, ...] = (
    string(
        "config",
        "daprsystem",
        "Name of the Configuration resource to read from $NAMESPACE.",
    ),
    string(
        "watch-interval",
        "0",
        "How often the watchdog looks for pods missing their sidecar: a duration of at least "
        "1s, 'once' for a single pass, or 0 (also false, f, no, off) to turn it off.",
    ),
    integer(
        "max-pod-restarts-per-minute",
        20,
        "Most pods the watchdog may delete per minute; 0 or less means no limit.",
    ),
    boolean(
        "disable-leader-election",
        False,
        "Run the leader-only work in every replica instead of electing one.",
    ),
    boolean(
        "disable-service-reconciler",
        False,
        "Do not create the <app-id>-dapr Services for Dapr-enabled workloads.",
    ),
    string(
        "watch-namespace",
        "",
        "Watch only this namespace; empty watches the whole cluster.",
    ),
    boolean(
        "enable-argo-rollout-service-reconciler",
        False,
        "Accepted for compatibility and ignored: Services are kept for Deployments and "
        "StatefulSets only, not for Argo Rollouts.",
    ),
    boolean(
        "watchdog-can-patch-pod-labels",
        False,
        "Let the watchdog label pods that already carry a sidecar, so later passes skip them.",
    ),
    string(
        "trust-anchors-file",
        "/var/run/secrets/dapr.io/tls/ca.crt",
        "PEM bundle of trust anchors; reloaded when the file changes.",
    ),
    integer("port", 6500, "Port of the operator gRPC API."),
    string(
        "listen-address",
        "",
        "Address the gRPC API binds to; empty means every interface.",
    ),
    integer("webhook-server-port", 19443, "Port of the CRD conversion webhook (HTTPS)."),
    string(
        "webhook-server-listen-address",
        "",
        "Address the conversion webhook binds to; empty means every interface.",
    ),
    duration(
        "cache-sync-period",
        "0s",
        "Accepted for compatibility and ignored: the caches follow their watches and list "
        "again whenever a watch cannot resume.",
    ),
    string(
        "kubeconfig",
        "",
        "Kubeconfig to use outside a cluster (the in-cluster configuration wins when there is "
        "one); empty falls back to the first file of $KUBECONFIG.",
    ),
)
