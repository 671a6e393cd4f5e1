"""Whatever a client sends, sentry answers with a gRPC status and keeps serving."""

from __future__ import annotations

from pathlib import Path

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daprplane._proto.sentry.v1 import sentry_pb2, sentry_pb2_grpc
from daprplane.plugins.sentry.ca import pem
from tests.integration.sentry.client import sentry_channel
from tests.integration.sentry.conftest import SentryProcess, run_sentry
from tests.pki import csr_pem, new_key

VALID_CSRS = [csr_pem(new_key(kind)) for kind in ("ed25519", "ecdsa", "rsa")]
EXPECTED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INTERNAL,
}


def _mutated(data: bytes, position: int, value: int) -> bytes:
    der = bytearray(next(pem.blocks(data)).der)
    der[position % len(der)] = value
    return pem.encode("CERTIFICATE REQUEST", bytes(der))


csrs = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(VALID_CSRS),
    st.builds(_mutated, st.sampled_from(VALID_CSRS), st.integers(0, 10_000), st.integers(0, 255)),
    st.builds(
        lambda t, b: pem.encode(t, b),
        st.sampled_from(["CERTIFICATE REQUEST", "CERTIFICATE", "X"]),
        st.binary(max_size=100),
    ),
)
names = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["app", "dapr-injector", "dapr-scheduler", "..", "a.b", ""]),
)

requests = st.builds(
    sentry_pb2.SignCertificateRequest,
    id=names,
    token=st.text(max_size=50),
    trust_domain=st.one_of(
        st.text(max_size=30), st.sampled_from(["", "public", "spiffe://x/y", "UP"])
    ),
    namespace=st.one_of(names, st.just("default")),
    certificate_signing_request=csrs,
    token_validator=st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, 1, 2, 3])),
    jwt_audiences=st.lists(st.text(max_size=20), max_size=3),
)


def test_fuzz_sign_certificate(tmp_path: Path) -> None:
    with run_sentry(tmp_path / "creds") as sentry:
        _fuzz(sentry)
        code, out = sentry.stop()
    assert code == 0
    assert "Unexpected error" not in out and "Traceback" not in out


def _fuzz(sentry: SentryProcess) -> None:
    with sentry_channel(sentry.port, sentry.trust_anchors) as (channel, _):
        stub = sentry_pb2_grpc.CAStub(channel)
        raw = channel.unary_unary(
            "/dapr.proto.sentry.v1.CA/SignCertificate",
            request_serializer=lambda body: body,
            response_deserializer=lambda body: body,
        )

        @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
        @given(request=requests)
        def typed(request: sentry_pb2.SignCertificateRequest) -> None:
            try:
                response = stub.SignCertificate(request, timeout=10)
            except grpc.RpcError as error:
                assert error.code() in EXPECTED, (error.code(), error.details())
            else:
                assert response.workload_certificate.count(b"-----BEGIN CERTIFICATE-----") >= 2

        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=st.binary(max_size=400))
        def untyped(body: bytes) -> None:
            try:
                raw(body, timeout=10)
            except grpc.RpcError as error:
                assert error.code() not in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                )

        typed()
        untyped()
        response = stub.SignCertificate(
            sentry_pb2.SignCertificateRequest(
                id="still-alive", namespace="default", certificate_signing_request=VALID_CSRS[0]
            ),
            timeout=10,
        )
        assert response.workload_certificate
    assert sentry.process.poll() is None
