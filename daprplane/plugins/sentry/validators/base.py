"""The interface every token validator implements: built-in, Kubernetes, JWKS or a plugin's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from daprplane._proto.sentry.v1 import sentry_pb2

if TYPE_CHECKING:
    from cryptography import x509

TokenValidator = sentry_pb2.SignCertificateRequest.TokenValidator


class ValidationError(Exception):
    """A request the validator rejects; the message goes back with ``PermissionDenied``."""


@dataclass(frozen=True)
class Validation:
    """What a validator decided about a request it accepts."""

    trust_domain: str
    #: Extra non-critical extensions for the certificate (the Kubernetes images extension).
    extensions: tuple[x509.ExtensionType, ...] = ()


@runtime_checkable
class Validator(Protocol):
    #: The ``SignCertificateRequest.TokenValidator`` value that selects this validator.
    kind: int
    #: Healthz target that becomes ready once :meth:`start` returns; ``None`` for no target.
    healthz_target: str | None

    async def start(self) -> None:
        """Get ready to validate; an error here stops sentry (exit 1)."""
        ...

    async def stop(self) -> None: ...

    async def validate(self, request: sentry_pb2.SignCertificateRequest) -> Validation:
        """Accept the request, or raise :class:`ValidationError` with the reason."""
        ...


def kind_name(kind: int) -> str:
    """``insecure``, ``kubernetes``, ``jwks``; the number for values outside the enum."""
    try:
        return str(TokenValidator.Name(kind)).lower()
    except ValueError:
        return str(kind)
