"""Authorization of Host messages: Dapr's order, codes and messages."""

from __future__ import annotations

import grpc
import pytest

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.core.security.spiffe import SpiffeId
from daprplane.plugins.placement.authorizer import AuthorizationError, authorize

INVALID, DENIED = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED
APP_A = SpiffeId.for_app("public", "default", "a")


def _host(**fields: object) -> placement_pb2.Host:
    values = {"name": "n", "id": "a", "namespace": "default", "operation": placement_pb2.REPORT}
    values.update(fields)
    version = values.pop("version", None)
    host = placement_pb2.Host(**values)  # type: ignore[arg-type]
    if version is not None:
        host.version = version  # type: ignore[assignment]
    return host


def _reject(host: placement_pb2.Host | None, **kw: object) -> tuple[grpc.StatusCode, str]:
    kw.setdefault("mtls", False)
    kw.setdefault("client_id", None)
    with pytest.raises(AuthorizationError) as caught:
        authorize(host, **kw)  # type: ignore[arg-type]
    return caught.value.status.code, caught.value.status.details


def test_accepts_plain_reports_acks_and_own_internal_entities() -> None:
    authorize(_host(entities=["T", "dapr.internal.default.a.workflow"]), mtls=False, client_id=None)
    authorize(_host(operation=placement_pb2.LOCK, version=3), mtls=False, client_id=None)
    authorize(_host(operation=placement_pb2.LOCK), mtls=False, client_id=None)  # op without version
    authorize(
        _host(entities=["dapr", "dapr.internalx.y", "x.dapr.internal"]), mtls=False, client_id=None
    )
    authorize(_host(), mtls=True, client_id=APP_A)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (None, (INVALID, "received nil host report")),
        (
            _host(operation=placement_pb2.UNKNOWN, version=1),
            (INVALID, "both operation and version must be set or both must be unset"),
        ),
        (_host(id=""), (INVALID, "host ID and namespace must be provided")),
        (_host(namespace=""), (INVALID, "host ID and namespace must be provided")),
        (
            _host(entities=["T", "dapr.internal.default.b.workflow"]),
            (
                DENIED,
                "entity dapr.internal.default.b.workflow is not allowed for app ID a in namespace "
                "default",
            ),
        ),
        (
            _host(entities=["dapr.internal.other.a.activity"]),
            (
                DENIED,
                "entity dapr.internal.other.a.activity is not allowed for app ID a in namespace "
                "default",
            ),
        ),
        (
            _host(entities=["dapr.internal.default"]),
            (
                DENIED,
                "entity dapr.internal.default is not allowed for app ID a in namespace default",
            ),
        ),
        (
            _host(entities=["dapr.internal"]),
            (DENIED, "entity dapr.internal is not allowed for app ID a in namespace default"),
        ),
    ],
)
def test_rejections_without_mtls(
    host: placement_pb2.Host | None, expected: tuple[object, str]
) -> None:
    assert _reject(host) == expected


def test_mtls_checks_identity_first_then_app_and_namespace() -> None:
    unauthenticated = (grpc.StatusCode.UNAUTHENTICATED, "failed to get client ID from context")
    assert _reject(None, mtls=True, client_id=None) == unauthenticated
    assert _reject(_host(), mtls=True, client_id=SpiffeId("public", "/x")) == unauthenticated
    assert _reject(_host(id="b"), mtls=True, client_id=APP_A) == (
        DENIED,
        "provided app ID b doesn't match the one in the SPIFFE ID (a)",
    )
    assert _reject(_host(namespace="prod"), mtls=True, client_id=APP_A) == (
        DENIED,
        "provided client namespace prod doesn't match the one in the SPIFFE ID (default)",
    )
    # Shape checks come before identity checks.
    assert _reject(_host(id=""), mtls=True, client_id=APP_A)[0] is INVALID
