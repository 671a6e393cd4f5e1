"""Request bodies that are not protobuf: the shared decoding helper, sentry's servicer wired
through it on a real grpc.aio server (loopback, no TLS), and the wording placement and the
operator keep."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daprplane._proto.operator.v1 import operator_pb2
from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.core import grpc_decoding
from daprplane.plugins.operator.api import ApiError, _decode
from daprplane.plugins.placement.authorizer import AuthorizationError
from daprplane.plugins.placement.server import decode_host
from daprplane.plugins.sentry.ca import Credentials, generate
from daprplane.plugins.sentry.metrics import SentryMetrics
from daprplane.plugins.sentry.server import Authority, CAServicer, add_to_server
from daprplane.plugins.sentry.validators import ValidatorSet
from daprplane.plugins.sentry.validators.base import TokenValidator
from daprplane.plugins.sentry.validators.insecure import InsecureValidator
from tests.pki import csr_pem

METHOD = "/dapr.proto.sentry.v1.CA/SignCertificate"
CORRUPT = b"\x0a\x05ab"  # field 1 says 5 bytes follow; 2 do
PREFIX = "grpc: error unmarshalling request: "


def _undecodable(body: bytes) -> bool:
    try:
        sentry_pb2.SignCertificateRequest.FromString(body)
    except Exception:
        return True
    return False


def test_decode_raises_with_the_decoders_reason() -> None:
    with pytest.raises(grpc_decoding.UndecodableRequest) as caught:
        grpc_decoding.decode(sentry_pb2.SignCertificateRequest, b"\x0a\x01\xff")
    assert caught.value.code == grpc.StatusCode.INTERNAL
    assert caught.value.details() == PREFIX + caught.value.reason
    assert "UTF-8" in caught.value.reason
    request = grpc_decoding.decode(sentry_pb2.SignCertificateRequest, b"\x0a\x03app")
    assert request.id == "app"


def test_placement_and_operator_keep_their_wording() -> None:
    with pytest.raises(AuthorizationError) as placement:
        decode_host(CORRUPT)
    assert placement.value.status.code == grpc.StatusCode.INTERNAL
    assert placement.value.status.details.startswith(
        "grpc: failed to unmarshal the received message: Error parsing message"
    )
    with pytest.raises(ApiError) as operator:
        _decode(operator_pb2.ListComponentsRequest, CORRUPT)
    assert operator.value.code == grpc.StatusCode.INTERNAL
    assert operator.value.message.startswith(PREFIX + "Error parsing message")


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    insecure = TokenValidator.INSECURE
    authority = Authority(
        credentials=Credentials(generate("localhost", "default", timedelta(minutes=15))),
        workload_cert_ttl=timedelta(hours=1),
        allowed_clock_skew=timedelta(minutes=15),
        namespace="default",
        cluster_domain="cluster.local",
    )
    servicer = CAServicer(
        authority, ValidatorSet({insecure: InsecureValidator()}, insecure), SentryMetrics()
    )
    server = grpc.aio.server()
    add_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


async def test_garbage_gets_internal_and_requests_still_work(channel: grpc.aio.Channel) -> None:
    raw = channel.unary_unary(METHOD)  # no serializers: bytes in, bytes out
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(CORRUPT, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == (
        PREFIX + "Error parsing message with type 'dapr.proto.sentry.v1.SignCertificateRequest': "
        "Wire format was corrupt"
    )
    request = sentry_pb2.SignCertificateRequest(
        id="app", namespace="default", certificate_signing_request=csr_pem()
    )
    response = sentry_pb2.SignCertificateResponse.FromString(
        await raw(request.SerializeToString(), timeout=10)
    )
    assert response.workload_certificate.startswith(b"-----BEGIN CERTIFICATE-----")


async def test_fuzzed_bodies_never_get_unknown(channel: grpc.aio.Channel) -> None:
    raw = channel.unary_unary(METHOD)
    seen: list[bytes] = []

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=st.binary(max_size=200))
    def collect(body: bytes) -> None:
        seen.append(body)

    collect()  # hypothesis is synchronous: draw the bodies first, then send them
    for body in [*seen, CORRUPT]:
        try:
            await raw(body, timeout=10)
        except grpc.aio.AioRpcError as error:
            if _undecodable(body):
                assert error.code() == grpc.StatusCode.INTERNAL, body
                assert (error.details() or "").startswith(PREFIX), body
            else:  # it decoded: whatever the answer, it is a status the handler chose
                assert error.code() != grpc.StatusCode.UNKNOWN, (body, error.details())
