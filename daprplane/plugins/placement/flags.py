"""Command-line flags of the placement service (``cmd/placement/options/options.go``).

The logging, metrics and healthz flags every component shares are defined by core, not here.

Flags Dapr parses but ignores:

- ``--inmem-store-enabled`` and ``--raft-logstore-path``: the raft store is always in memory since
  1.17, but Helm still passes both in HA mode, so they must be accepted.
- ``--max-api-level`` and ``--min-api-level``: deprecated, hidden, and without effect.
- ``--metrics-listen-address`` (core): Dapr binds the metrics exporter to ``--listen-address``
  instead. We honour it.
- ``--healthz-listen-address`` (core): ignored up to v1.18.3. We honour it.
"""

from __future__ import annotations

import os

from daprplane.core.flags import (
    Flag,
    boolean,
    duration,
    integer,
    string,
    string_slice,
    truthy_env,
)

_UNUSED_API_LEVEL = "this flag is unused and will be removed"


def default_metadata_enabled() -> bool:
    """``--metadata-enabled`` defaults to the truthiness of ``DAPR_PLACEMENT_METADATA_ENABLED``."""
    return truthy_env("DAPR_PLACEMENT_METADATA_ENABLED")


def default_sentry_address() -> str:
    """Sentry's Service in the control-plane namespace (``$NAMESPACE``, else ``default``)."""
    namespace = os.environ.get("NAMESPACE") or "default"
    return f"dapr-sentry.{namespace}.svc:443"


FLAGS: tuple[Flag, ...] = (
    string(
        "id",
        "dapr-placement-0",
        "Raft node ID of this instance; must be listed in --initial-cluster.",
    ),
    string_slice(
        "initial-cluster",
        ("dapr-placement-0=127.0.0.1:8201",),
        "Raft peers as a comma-separated list of id=host:port entries; this node listens on "
        "its own entry's address, even when it is the only peer.",
    ),
    boolean(
        "inmem-store-enabled",
        True,
        "Accepted for compatibility and ignored: the raft store always lives in memory.",
    ),
    string(
        "raft-logstore-path",
        "",
        "Accepted for compatibility and ignored: raft logs are not written to disk.",
    ),
    integer("port", 50005, "Port of the placement gRPC API."),
    string(
        "listen-address",
        "",
        "Address the gRPC API binds to; empty means every interface.",
    ),
    boolean("tls-enabled", False, "Require mutual TLS on the gRPC API and between raft peers."),
    boolean(
        "metadata-enabled",
        default_metadata_enabled,
        "Serve the placement tables on the healthz port at /placement/state "
        "(default: from DAPR_PLACEMENT_METADATA_ENABLED).",
    ),
    integer(
        "replicationFactor",
        100,
        "Virtual nodes per actor host on the hash ring.",
    ),
    duration(
        "keepalive-time",
        "2s",
        "Interval between gRPC keepalive pings to connected hosts (1s to 10s).",
    ),
    duration(
        "keepalive-timeout",
        "3s",
        "Time to wait for a keepalive ping acknowledgement before dropping a host (1s to 10s).",
    ),
    duration(
        "disseminate-timeout",
        "8s",
        "Longest a full table dissemination round may take before it is abandoned.",
    ),
    duration(
        "disseminate-coalesce-window",
        "0s",
        "Pause after a dissemination round that gathers further membership changes into the "
        "next one; 0s disables it, 100ms to 250ms suits busy clusters.",
    ),
    string("trust-domain", "localhost", "Trust domain of the control plane."),
    string(
        "trust-anchors-file",
        "/var/run/secrets/dapr.io/tls/ca.crt",
        "PEM bundle of trust anchors; reloaded when the file changes.",
    ),
    string(
        "sentry-address",
        default_sentry_address,
        "Sentry address to request this service's certificate from "
        "(default: dapr-sentry.<NAMESPACE>.svc:443).",
    ),
    string("mode", "standalone", "Runtime mode: standalone or kubernetes."),
    integer(
        "max-api-level",
        10,
        "Has no effect.",
        hidden=True,
        deprecated=_UNUSED_API_LEVEL,
    ),
    integer(
        "min-api-level",
        0,
        "Has no effect.",
        hidden=True,
        deprecated=_UNUSED_API_LEVEL,
    ),
)
