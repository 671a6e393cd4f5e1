"""Where the CA material lives: the seam between the CA logic and its storage.

Standalone mode keeps it in files (:mod:`.files`); kubernetes mode in the ``dapr-trust-bundle``
Secret and ConfigMap (``ca/kube.py``). Both load, verify, generate what is missing, and persist
only what was generated.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from daprplane.plugins.sentry.ca.bundle import TrustBundle


class CredentialsError(Exception):
    """CA or JWT material that cannot be loaded, verified or stored; fatal at start."""


@dataclass(frozen=True)
class JwtSettings:
    enabled: bool
    key_id: str
    algorithm: str


@dataclass(frozen=True)
class CaSettings:
    """What generation needs to know."""

    trust_domain: str
    namespace: str
    allowed_clock_skew: timedelta
    jwt: JwtSettings


@dataclass(frozen=True)
class Credentials:
    """What a store hands sentry: the X.509 bundle and, when JWT is in use, its material."""

    bundle: TrustBundle
    jwt: Any | None = None  # daprplane.plugins.sentry.jwt.JwtMaterial
    #: True when the X.509 bundle was generated (and persisted) by this load.
    generated: bool = False


class CredentialStore(Protocol):
    async def load(self, settings: CaSettings) -> Credentials:
        """Load (or generate and persist) the credentials; raise :class:`CredentialsError`."""
        ...

    async def watch(self, on_change: Callable[[], Awaitable[None]]) -> None:
        """Call ``on_change`` whenever the stored credentials change, until cancelled."""
        ...

    async def close(self) -> None:
        """Release what the store holds (API sessions)."""
        ...


def load_jwt_material(
    key_pem: bytes | None, jwks_json: bytes | None, settings: JwtSettings
) -> tuple[Any | None, bool]:
    """The one place that hands JWT material to the JWT module.

    Returns ``(material, generated)``. Without the JWT module, stored JWT material cannot be
    checked, so it is ignored while JWT is disabled and enabling JWT is an error.
    """
    try:
        jwt = importlib.import_module("daprplane.plugins.sentry.jwt")
    except ModuleNotFoundError as error:
        if error.name != "daprplane.plugins.sentry.jwt":
            raise
        if settings.enabled:
            raise CredentialsError("JWT issuance is not available in this build") from None
        return None, False
    try:
        material, generated = jwt.load_jwt_material(
            key_pem,
            jwks_json,
            enabled=settings.enabled,
            key_id=settings.key_id,
            algorithm=settings.algorithm,
        )
    except jwt.JwtMaterialError as error:
        raise CredentialsError(str(error)) from None
    return material, bool(generated)
