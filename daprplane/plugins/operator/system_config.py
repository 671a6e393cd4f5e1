"""The control plane's own Configuration (``daprsystem`` by default), read once at start.

Dapr's operator refuses to start without it (a common first-install failure: the chart's
Configuration was not applied). It takes three things from ``spec.mtls``: the control-plane trust
domain (its own SPIFFE identity and Sentry's), Sentry's address, and whether sidecars use mTLS,
which only decides the ``appProtocol`` of the ``dapr-internal`` port of ``<app-id>-dapr`` Services.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from daprplane.core.kube.client import KubeApiError, request
from daprplane.plugins.operator.kinds import CONFIGURATIONS

REQUEST_TIMEOUT = 10.0


class SystemConfigError(Exception):
    pass


def default_sentry_address(namespace: str) -> str:
    return f"dapr-sentry.{namespace}.svc.cluster.local:443"


def mtls_enabled(configuration: Mapping[str, Any] | None) -> bool:
    """``spec.mtls.enabled``; absent (or not a boolean) counts as on, as in Dapr."""
    spec = (configuration or {}).get("spec")
    mtls = spec.get("mtls") if isinstance(spec, Mapping) else None
    enabled = mtls.get("enabled") if isinstance(mtls, Mapping) else None
    return enabled if isinstance(enabled, bool) else True


@dataclass(frozen=True)
class SystemConfig:
    name: str
    mtls_enabled: bool
    control_plane_trust_domain: str
    sentry_address: str

    @classmethod
    def from_object(cls, configuration: Mapping[str, Any], namespace: str) -> SystemConfig:
        spec = configuration.get("spec")
        mtls = spec.get("mtls") if isinstance(spec, Mapping) else None
        mtls = mtls if isinstance(mtls, Mapping) else {}
        trust_domain = mtls.get("controlPlaneTrustDomain")
        if not isinstance(trust_domain, str) or not trust_domain.strip():
            raise SystemConfigError("control plane trust domain is required")
        sentry_address = mtls.get("sentryAddress")
        if not isinstance(sentry_address, str) or not sentry_address.strip():
            sentry_address = default_sentry_address(namespace)
        metadata = configuration.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        return cls(
            name=str(name or ""),
            mtls_enabled=mtls_enabled(configuration),
            control_plane_trust_domain=trust_domain.strip(),
            sentry_address=sentry_address.strip(),
        )


async def load_system_config(api: Any, namespace: str, name: str) -> SystemConfig:
    """An uncached GET of ``configurations/<name>`` in ``namespace``."""
    try:
        configuration = await request(
            api, "GET", CONFIGURATIONS.object_path(namespace, name), timeout=REQUEST_TIMEOUT
        )
    except KubeApiError as error:
        raise SystemConfigError(f"unable to load configuration: {error.message}") from None
    except (OSError, TimeoutError) as error:
        raise SystemConfigError(f"unable to load configuration: {error}") from None
    if not isinstance(configuration, Mapping):
        raise SystemConfigError(f"unable to load configuration: {name}: not an object")
    return SystemConfig.from_object(configuration, namespace)
