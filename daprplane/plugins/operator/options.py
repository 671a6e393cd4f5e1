"""The operator's options: its flags and environment, checked once at start.

Errors are fatal (exit 1) with Dapr's wording where Dapr has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from daprplane.core import goduration

#: ``--cache-sync-period=0`` keeps controller-runtime's default resync period.
DEFAULT_CACHE_SYNC = timedelta(hours=10)
WATCHDOG_OFF = frozenset({"0", "false", "f", "no", "off"})
WATCHDOG_ONCE = "once"
MIN_WATCH_INTERVAL = 1.0


class OptionsError(ValueError):
    pass


def parse_watch_interval(text: str) -> float | None:
    """``None``: watchdog off; ``0``: one pass; otherwise the seconds between passes."""
    value = text.strip().lower()
    if value in WATCHDOG_OFF:
        return None
    if value == WATCHDOG_ONCE:
        return 0.0
    try:
        seconds = goduration.parse(text.strip()).total_seconds()
    except ValueError:
        raise OptionsError(
            f"invalid value for --watch-interval: {text!r} is neither a duration, 'once' nor "
            "one of 0, false, f, no, off"
        ) from None
    if seconds < MIN_WATCH_INTERVAL:
        raise OptionsError(
            f"invalid value for --watch-interval: {text!r}; the interval must be at least 1s"
        )
    return seconds


def _namespace(environ: Mapping[str, str]) -> str:
    if "NAMESPACE" not in environ:
        raise OptionsError("'NAMESPACE' environment variable not set")
    namespace = environ["NAMESPACE"].strip()
    if not namespace:
        raise OptionsError("'NAMESPACE' environment variable is empty")
    return namespace


@dataclass(frozen=True)
class OperatorOptions:
    namespace: str
    config_name: str
    #: See :func:`parse_watch_interval`.
    watch_interval: float | None
    max_pod_restarts_per_minute: int
    leader_election: bool
    service_reconciler: bool
    argo_rollouts: bool
    watch_namespace: str
    watchdog_can_patch_pod_labels: bool
    trust_anchors_file: str
    listen_address: str
    port: int
    webhook_listen_address: str
    webhook_port: int
    #: ``ENABLE_WEBHOOKS=false`` turns off the conversion webhook and the CRD patch.
    webhooks: bool
    cache_sync_period: float
    kubeconfig: str

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any], environ: Mapping[str, str]) -> OperatorOptions:
        sync = flags["cache-sync-period"]
        sync_seconds = sync.total_seconds() if isinstance(sync, timedelta) else float(sync)
        if sync_seconds < 0:
            raise OptionsError("invalid value for --cache-sync-period: must not be negative")
        for name in ("port", "webhook-server-port"):
            if not 0 <= int(flags[name]) <= 65535:
                raise OptionsError(f"invalid value for --{name}: {flags[name]} is out of range")
        return cls(
            namespace=_namespace(environ),
            config_name=str(flags["config"]),
            watch_interval=parse_watch_interval(str(flags["watch-interval"])),
            max_pod_restarts_per_minute=int(flags["max-pod-restarts-per-minute"]),
            leader_election=not flags["disable-leader-election"],
            service_reconciler=not flags["disable-service-reconciler"],
            argo_rollouts=bool(flags["enable-argo-rollout-service-reconciler"]),
            watch_namespace=str(flags["watch-namespace"]).strip(),
            watchdog_can_patch_pod_labels=bool(flags["watchdog-can-patch-pod-labels"]),
            trust_anchors_file=str(flags["trust-anchors-file"]),
            listen_address=str(flags["listen-address"]),
            port=int(flags["port"]),
            webhook_listen_address=str(flags["webhook-server-listen-address"]),
            webhook_port=int(flags["webhook-server-port"]),
            webhooks=environ.get("ENABLE_WEBHOOKS", "").strip().lower() != "false",
            cache_sync_period=sync_seconds or DEFAULT_CACHE_SYNC.total_seconds(),
            kubeconfig=str(flags["kubeconfig"]),
        )
