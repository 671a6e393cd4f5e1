"""Bytes that are not a SignCertificateRequest, sent to a real sentry over its TLS port: grpc-go's
``INTERNAL`` "grpc: error unmarshalling request: ...", and sentry keeps serving."""

from __future__ import annotations

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daprplane._proto.sentry.v1 import sentry_pb2, sentry_pb2_grpc
from daprplane.core.security.spiffe import from_certificate
from daprplane.plugins.sentry.ca import pem
from tests.integration.launchers import http_status
from tests.integration.sentry.client import sentry_channel
from tests.integration.sentry.conftest import SentryProcess
from tests.pki import csr_pem

METHOD = "/dapr.proto.sentry.v1.CA/SignCertificate"
PREFIX = "grpc: error unmarshalling request: "


def _undecodable(body: bytes) -> bool:
    try:
        sentry_pb2.SignCertificateRequest.FromString(body)
    except Exception:
        return True
    return False


def _still_serving(sentry: SentryProcess, channel: grpc.Channel) -> None:
    stub = sentry_pb2_grpc.CAStub(channel)  # type: ignore[no-untyped-call]
    response = stub.SignCertificate(
        sentry_pb2.SignCertificateRequest(
            id="still-alive", namespace="default", certificate_signing_request=csr_pem()
        ),
        timeout=10,
    )
    leaf = pem.decode_certificates(response.workload_certificate)[0]
    assert str(from_certificate(leaf)) == "spiffe://public/ns/default/still-alive"
    assert http_status(f"http://127.0.0.1:{sentry.healthz_port}/healthz") == 200
    assert sentry.process.poll() is None


def test_garbage_gets_internal(sentry: SentryProcess) -> None:
    with sentry_channel(sentry.port, sentry.trust_anchors) as (channel, _):
        raw = channel.unary_unary(METHOD)  # no serializers: the bytes go out as they are
        for body in (b"\xff", b"garbage bytes", b"\x0a\x05ab", b"\x0a\x01\xff"):
            try:
                raw(body, timeout=10)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.INTERNAL, (body, error.details())
                assert error.details().startswith(PREFIX + "Error parsing message"), body
            else:
                raise AssertionError(f"{body!r} was answered")
        _still_serving(sentry, channel)


def test_fuzzed_bodies_over_one_connection(sentry: SentryProcess) -> None:
    with sentry_channel(sentry.port, sentry.trust_anchors) as (channel, tunnel):
        raw = channel.unary_unary(METHOD)

        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=st.binary(min_size=1, max_size=300))
        def send(body: bytes) -> None:
            try:
                raw(body, timeout=10)
            except grpc.RpcError as error:
                if _undecodable(body):
                    assert error.code() == grpc.StatusCode.INTERNAL, (body, error.details())
                    assert error.details().startswith(PREFIX), body
                else:  # it decoded, so the servicer chose the status
                    assert error.code() != grpc.StatusCode.UNKNOWN, (body, error.details())

        send()
        _still_serving(sentry, channel)
        assert len(tunnel.leaves) == 1  # every request went over the one connection
