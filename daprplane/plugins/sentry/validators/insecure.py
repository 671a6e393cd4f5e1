"""The INSECURE validator: the common checks only; the request names its own trust domain.

It is the default in standalone mode, where workloads present no token.
"""

from __future__ import annotations

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.plugins.sentry.validators import common
from daprplane.plugins.sentry.validators.base import TokenValidator, Validation


class InsecureValidator:
    kind: int = TokenValidator.INSECURE
    healthz_target: str | None = None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def validate(self, request: sentry_pb2.SignCertificateRequest) -> Validation:
        return Validation(trust_domain=common.validate(request))
