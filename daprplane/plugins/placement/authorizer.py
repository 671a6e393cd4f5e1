"""Authorization of every Host message, first and later (Dapr ``internal/authorizer``).

The checks run in Dapr's order and fail with Dapr's codes and messages. Entities named
``dapr.internal.<namespace>.<app-id>...`` (the workflow, activity and retentioner actor types)
may only be hosted by that very app, with or without mTLS.
"""

from __future__ import annotations

import grpc

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.core.security.spiffe import SpiffeId
from daprplane.plugins.placement.streams import Status


class AuthorizationError(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.status = Status(code, details)


class Unauthenticated(AuthorizationError):
    """mTLS is on and the peer has no usable SPIFFE ID."""

    def __init__(self) -> None:
        super().__init__(grpc.StatusCode.UNAUTHENTICATED, "failed to get client ID from context")


def authorize(host: placement_pb2.Host | None, *, mtls: bool, client_id: SpiffeId | None) -> None:
    """Raise :class:`AuthorizationError` unless ``host`` may be accepted from this peer.

    ``client_id`` is the peer's SPIFFE ID (None when it has none); it is only consulted when
    ``mtls`` is on.
    """
    if mtls and (client_id is None or client_id.app_id is None):
        raise Unauthenticated()
    if host is None:
        raise AuthorizationError(grpc.StatusCode.INVALID_ARGUMENT, "received nil host report")
    if host.operation == placement_pb2.UNKNOWN and host.HasField("version"):
        raise AuthorizationError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "both operation and version must be set or both must be unset",
        )
    if not host.id or not host.namespace:
        raise AuthorizationError(
            grpc.StatusCode.INVALID_ARGUMENT, "host ID and namespace must be provided"
        )
    if mtls:
        assert client_id is not None
        if host.id != client_id.app_id:
            raise AuthorizationError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"provided app ID {host.id} doesn't match the one in the SPIFFE ID "
                f"({client_id.app_id})",
            )
        if host.namespace != client_id.namespace:
            raise AuthorizationError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"provided client namespace {host.namespace} doesn't match the one in the "
                f"SPIFFE ID ({client_id.namespace})",
            )
    for entity in host.entities:
        parts = entity.split(".")
        internal = len(parts) >= 2 and parts[0] == "dapr" and parts[1] == "internal"
        if internal and (len(parts) < 4 or parts[2] != host.namespace or parts[3] != host.id):
            raise AuthorizationError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"entity {entity} is not allowed for app ID {host.id} "
                f"in namespace {host.namespace}",
            )
