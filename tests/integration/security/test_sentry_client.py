"""The Sentry client over real gRPC and TLS against a test Sentry on 127.0.0.1."""

from __future__ import annotations

import socket

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from daprplane.core.security import csr, tokens
from daprplane.core.security.anchors import StaticTrustAnchors
from daprplane.core.security.credentials import grpc_server_credentials
from daprplane.core.security.sentry_client import SentryClient, SentryError, sign
from tests.integration.security.servers import SENTRY_ID, FakeSentry, grpc_server, static_source
from tests.pki import SentryCA


@pytest.fixture(scope="module")
def ca() -> SentryCA:
    return SentryCA()


def _client(ca: SentryCA, port: int, **options: object) -> SentryClient:
    defaults: dict[str, object] = {
        "address": f"127.0.0.1:{port}",
        "anchors": StaticTrustAnchors(ca.bundle),
        "app_id": "dapr-placement",
        "namespace": "default",
        "environ": {},
    }
    return SentryClient(**{**defaults, **options})  # type: ignore[arg-type]


async def _serve_raw(ca: SentryCA, sentry: FakeSentry, uris: list[str], issuer=None):  # type: ignore[no-untyped-def]
    chain, key = (issuer or ca).raw_pair(uris)
    credentials = grpc.ssl_server_credentials([(key, chain)])
    return grpc_server(sentry, lambda s: s.add_secure_port("127.0.0.1:0", credentials))


async def test_sign_succeeds_against_a_uri_san_only_sentry(ca: SentryCA) -> None:
    sentry = FakeSentry(ca)
    serving = await static_source(ca.svid(SENTRY_ID))  # Ed25519, URI SAN only, no DNS name
    credentials = grpc_server_credentials(serving)
    async with grpc_server(sentry, lambda s: s.add_secure_port("127.0.0.1:0", credentials)) as port:
        svid = await _client(ca, port).sign()
    assert str(svid.spiffe_id) == "spiffe://localhost/ns/default/dapr-placement"
    (request,) = sentry.requests
    assert request.id == "dapr-placement" and request.namespace == "default"
    assert request.trust_domain == "localhost"  # control-plane service in the cp namespace
    assert request.token == "" and request.token_validator == tokens.UNKNOWN
    assert len(x509.load_pem_x509_csr(request.certificate_signing_request).subject) == 0


async def test_rsa_keys_tokens_and_app_identity(ca: SentryCA, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sentry = FakeSentry(ca)
    token_file = tmp_path / "token"
    token_file.write_text("header.claims.sig")
    async with await _serve_raw(ca, sentry, [SENTRY_ID]) as port:
        svid = await sign(
            address=f"localhost:{port}",
            anchors=StaticTrustAnchors(ca.bundle),
            app_id="myapp",
            namespace="default",
            key_algorithm=csr.KeyAlgorithm.RSA,
            kubernetes_mode=True,
            environ={tokens.TOKEN_FILE_ENV: str(token_file)},
            jwt_audiences=["a", "b"],
        )
    assert isinstance(svid.private_key, rsa.RSAPrivateKey)
    assert str(svid.spiffe_id) == "spiffe://public/ns/default/myapp"
    (request,) = sentry.requests
    assert request.trust_domain == "" and request.token == "header.claims.sig"
    assert request.token_validator == tokens.KUBERNETES
    assert list(request.jwt_audiences) == ["a", "b"]


@pytest.mark.parametrize(
    ("uris", "other_ca", "message"),
    [
        (["spiffe://localhost/ns/default/dapr-placement"], False, "unexpected ID"),
        (["spiffe://localhost/ns/dapr-system/dapr-sentry"], False, "unexpected ID"),
        ([SENTRY_ID], True, "certificate verify failed"),
        ([SENTRY_ID, "spiffe://localhost/ns/default/extra"], False, "more than one URI SAN"),
        ([], False, "no URI SAN"),
    ],
)
async def test_sentry_identity_is_verified(
    ca: SentryCA, uris: list[str], other_ca: bool, message: str
) -> None:
    sentry = FakeSentry(ca)
    issuer = SentryCA() if other_ca else ca
    async with await _serve_raw(ca, sentry, uris, issuer) as port:
        with pytest.raises(SentryError, match=message) as caught:
            await _client(ca, port, tries=2).sign()
    assert "UNAVAILABLE" in str(caught.value)
    assert sentry.requests == []  # nothing was sent to an unverified server


async def test_errors_from_sentry_are_not_retried(ca: SentryCA) -> None:
    sentry = FakeSentry(ca)
    sentry.fail_with = (grpc.StatusCode.PERMISSION_DENIED, "invalid request: namespace is required")
    async with await _serve_raw(ca, sentry, [SENTRY_ID]) as port:
        with pytest.raises(SentryError, match="PERMISSION_DENIED: invalid request: namespace"):
            await _client(ca, port).sign()
    assert len(sentry.requests) == 1


async def test_unreachable_sentry_is_retried_then_reported(ca: SentryCA) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = _client(ca, port, tries=3, retry_backoff=0.01)
    with pytest.raises(SentryError, match=r"UNAVAILABLE: .*(refused|Connect call failed)"):
        await client.sign()


async def test_invalid_responses_are_rejected(ca: SentryCA) -> None:
    class BrokenSentry(FakeSentry):
        async def SignCertificate(self, request, context):  # type: ignore[no-untyped-def]
            response = await super().SignCertificate(request, context)
            response.workload_certificate = (
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            )
            return response

    async with await _serve_raw(ca, BrokenSentry(ca), [SENTRY_ID]) as port:
        with pytest.raises(SentryError, match="invalid workload certificate"):
            await _client(ca, port).sign()
