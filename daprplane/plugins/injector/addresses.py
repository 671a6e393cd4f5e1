"""Where injected sidecars find the control plane (Dapr's ``patcher/services.go``).

Every address is a cluster-local Service name in the control-plane namespace:
``<service>.<namespace>.svc.<cluster domain>:<port>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from daprplane.plugins.injector.goparse import parse_go_int

if TYPE_CHECKING:
    from daprplane.plugins.injector.config import InjectorConfig


@dataclass(frozen=True)
class ServiceAddress:
    """A control-plane Service and port, before the namespace and domain are known."""

    name: str
    port: int

    def address(self, namespace: str, domain: str) -> str:
        return f"{self.name}.{namespace}.svc.{domain}:{self.port}"


def parse_service_address(text: str) -> ServiceAddress:
    """``<service>:<port>``, as ``ACTORS_SERVICE_ADDRESS`` and friends are written."""
    name, colon, port = text.partition(":")
    number = parse_go_int(port, 32) if colon else None
    if not name or ":" in port or number is None or not 0 <= number <= 65535:
        raise ValueError(f"invalid service address {text!r}: expected '<service>:<port>'")
    return ServiceAddress(name, number)


OPERATOR = ServiceAddress("dapr-api", 443)
SENTRY = ServiceAddress("dapr-sentry", 443)
SCHEDULER = ServiceAddress("dapr-scheduler-server-a", 443)


@dataclass(frozen=True)
class ControlPlaneAddresses:
    """The control-plane flags every daprd gets, computed once from the injector config."""

    operator: str
    sentry: str
    scheduler: str
    placement: str | None  # --placement-host-address
    actors_service: str | None  # --actors-service name:address (a non-placement actors service)
    reminders_service: str | None  # --reminders-service name:address
    sentry_spiffe_id: str  # also the audience of the sidecar's projected token

    @classmethod
    def from_config(cls, config: InjectorConfig) -> ControlPlaneAddresses:
        namespace, domain = config.namespace, config.kube_cluster_domain
        placement = actors = reminders = None
        actors_service = config.actors_service
        if config.actors_enabled and actors_service.address is not None:
            address = actors_service.address.address(namespace, domain)
            if actors_service.name == "placement":
                placement = address
            else:
                actors = f"{actors_service.name}:{address}"
        named = config.reminders_service
        # REMINDERS_SERVICE_NAME=default means daprd's built-in reminders, which need no flag;
        # Dapr emits the unusable "default:.<ns>.svc.<domain>:0" instead.
        if named is not None and named.address is not None:
            reminders = f"{named.name}:{named.address.address(namespace, domain)}"
        return cls(
            operator=OPERATOR.address(namespace, domain),
            sentry=SENTRY.address(namespace, domain),
            scheduler=SCHEDULER.address(namespace, domain),
            placement=placement,
            actors_service=actors,
            reminders_service=reminders,
            sentry_spiffe_id=(
                f"spiffe://{config.control_plane_trust_domain}/ns/{namespace}/dapr-sentry"
            ),
        )
