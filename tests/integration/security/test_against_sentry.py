"""The identity library against the real sentry: the launcher started by absolute path with an
empty environment, standalone mode, insecure validator, short-lived workload certificates."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from daprplane._proto.sentry.v1 import sentry_pb2, sentry_pb2_grpc
from daprplane.core.security.anchors import StaticTrustAnchors, TrustAnchorsFile
from daprplane.core.security.authz import allow_ids
from daprplane.core.security.csr import KeyAlgorithm
from daprplane.core.security.dialer import SpiffeChannel
from daprplane.core.security.front import MtlsFront
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.sentry_client import SentryClient, SentryError
from daprplane.core.security.svid import Svid
from tests.integration.security.servers import WhoAmI, grpc_server, static_source
from tests.integration.sentry.conftest import SentryProcess, run_sentry, sentry_configuration
from tests.pki import SentryCA

TRUST_DOMAIN = "example.org"
CONTROL_PLANE_NS = "dapr-system"
SENTRY_ID = f"spiffe://{TRUST_DOMAIN}/ns/{CONTROL_PLANE_NS}/dapr-sentry"
PLACEMENT_ID = f"spiffe://{TRUST_DOMAIN}/ns/{CONTROL_PLANE_NS}/dapr-placement"
# An app outside the control plane asks for no trust domain; the insecure validator gives "public".
APP_ID = "spiffe://public/ns/default/myapp"
# 10 s certificates, backdated 1 s: an 11 s life, renewed 5.5 s after NotBefore.
CONFIG = sentry_configuration(workload_cert_ttl="10s", allowed_clock_skew="1s")
RECEIVED = "dapr_sentry_cert_sign_request_received_total"


@pytest.fixture(scope="module")
def sentry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentryProcess]:
    credentials = tmp_path_factory.mktemp("sentry") / "credentials"
    with run_sentry(
        credentials,
        f"--trust-domain={TRUST_DOMAIN}",
        env={"NAMESPACE": CONTROL_PLANE_NS},
        config=CONFIG,
    ) as process:
        yield process


def _client(sentry: SentryProcess, app_id: str, namespace: str, **options) -> SentryClient:  # type: ignore[no-untyped-def]
    settings = {
        "address": sentry.address,
        "anchors": StaticTrustAnchors.from_pem(sentry.trust_anchors),
        "app_id": app_id,
        "namespace": namespace,
        "control_plane_trust_domain": TRUST_DOMAIN,
        "control_plane_namespace": CONTROL_PLANE_NS,
        "environ": {},
        **options,
    }
    return SentryClient(**settings)


def _issuer(sentry: SentryProcess) -> x509.Certificate:
    return x509.load_pem_x509_certificate((sentry.credentials / "issuer.crt").read_bytes())


def _sans(svid: Svid) -> x509.SubjectAlternativeName:
    return svid.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


async def test_placement_gets_an_ed25519_svid(sentry: SentryProcess) -> None:
    # The anchors as control-plane services read them: from the ca.crt file.
    async with TrustAnchorsFile(sentry.credentials / "ca.crt") as anchors:
        svid = await _client(sentry, "dapr-placement", CONTROL_PLANE_NS, anchors=anchors).sign()
    assert str(svid.spiffe_id) == PLACEMENT_ID
    assert isinstance(svid.private_key, ed25519.Ed25519PrivateKey)
    assert isinstance(svid.leaf.public_key(), ed25519.Ed25519PublicKey)
    assert svid.leaf.subject == x509.Name([])
    assert _sans(svid).get_values_for_type(x509.DNSName) == []
    issuer = _issuer(sentry)
    assert svid.certificates[1:] == (issuer,)
    svid.leaf.verify_directly_issued_by(issuer)
    lifetime = svid.not_after - svid.not_before
    assert lifetime.total_seconds() == 11


async def test_injector_gets_an_rsa_svid_with_its_service_name(sentry: SentryProcess) -> None:
    client = _client(sentry, "dapr-injector", CONTROL_PLANE_NS, key_algorithm=KeyAlgorithm.RSA)
    svid = await client.sign()
    assert str(svid.spiffe_id) == f"spiffe://{TRUST_DOMAIN}/ns/{CONTROL_PLANE_NS}/dapr-injector"
    assert isinstance(svid.private_key, rsa.RSAPrivateKey)
    assert svid.private_key.key_size == 2048
    assert isinstance(svid.leaf.public_key(), rsa.RSAPublicKey)
    assert _sans(svid).get_values_for_type(x509.DNSName) == [
        f"dapr-sidecar-injector.{CONTROL_PLANE_NS}.svc"
    ]
    svid.leaf.verify_directly_issued_by(_issuer(sentry))


async def test_wrong_sentry_id_fails_before_any_request(sentry: SentryProcess) -> None:
    before = sentry.metrics()[RECEIVED]
    # Expects spiffe://example.org/ns/default/dapr-sentry; this sentry is in dapr-system.
    client = _client(
        sentry, "dapr-placement", "default", control_plane_namespace="default", tries=2
    )
    with pytest.raises(SentryError, match=r"UNAVAILABLE.*unexpected ID") as caught:
        await client.sign()
    assert SENTRY_ID in str(caught.value)
    assert sentry.metrics()[RECEIVED] == before  # nothing reached the servicer

    stranger = SentryCA(TRUST_DOMAIN, CONTROL_PLANE_NS)  # right ID, wrong anchors
    client = _client(sentry, "dapr-placement", CONTROL_PLANE_NS, tries=1)
    client.anchors = StaticTrustAnchors(stranger.bundle)
    with pytest.raises(SentryError, match=r"UNAVAILABLE.*certificate verify failed"):
        await client.sign()
    assert sentry.metrics()[RECEIVED] == before


async def _next_renewal(source: SvidSource, timeout: float) -> Svid:
    renewed: asyncio.Future[Svid] = asyncio.get_running_loop().create_future()

    def deliver(svid: Svid) -> None:
        if not renewed.done():
            renewed.set_result(svid)

    unsubscribe = source.subscribe(deliver)
    try:
        return await asyncio.wait_for(renewed, timeout)
    finally:
        unsubscribe()


@pytest.mark.slow
async def test_svid_source_renews_at_half_life(sentry: SentryProcess) -> None:
    client = _client(sentry, "dapr-placement", CONTROL_PLANE_NS)
    async with SvidSource(client.sign, check_interval=0.1, retry_interval=0.5) as source:
        first = source.current
        second = await _next_renewal(source, timeout=15)
        renewed_at = datetime.now(UTC)
        assert source.current is second
    # Not before half-life, and promptly after it (the source checks every 0.1 s).
    late = (renewed_at - first.renew_at).total_seconds()
    assert 0 <= late < 1.5, late
    assert second.leaf.serial_number != first.leaf.serial_number
    assert second.spiffe_id == first.spiffe_id
    # Renewed at first.renew_at (NotBefore + 5.5 s); second's NotBefore is 1 s before it was
    # signed, and X.509 times drop the fraction of a second.
    gap = (second.not_before - first.not_before).total_seconds()
    assert 3.5 <= gap <= 6.5, gap
    assert first.renew_at == first.not_before + (first.not_after - first.not_before) / 2


async def _who_am_i(port: int, anchors: StaticTrustAnchors, client: SvidSource) -> str:
    """The caller ID the server saw, or ``"error: <code>"``."""
    async with SpiffeChannel(
        f"127.0.0.1:{port}", anchors=anchors, authorize=allow_ids(PLACEMENT_ID), svid=client
    ) as channel:
        try:
            response = await sentry_pb2_grpc.CAStub(channel).SignCertificate(  # type: ignore[no-untyped-call]
                sentry_pb2.SignCertificateRequest(), timeout=5
            )
        except grpc.aio.AioRpcError as error:
            return f"error: {error.code().name}"
    return str(response.workload_certificate.decode())


async def test_mtls_front_with_svids_from_sentry(sentry: SentryProcess) -> None:
    anchors = StaticTrustAnchors.from_pem(sentry.trust_anchors)
    server_svid = SvidSource(_client(sentry, "dapr-placement", CONTROL_PLANE_NS).sign)
    app_svid = SvidSource(_client(sentry, "myapp", "default").sign)  # Ed25519, as daprd's
    stranger = SentryCA("public", "default")
    impostor = await static_source(stranger.svid(APP_ID))  # the same ID from another CA
    servicer = WhoAmI()
    async with server_svid, app_svid:
        front = MtlsFront(server_svid, anchors)
        async with grpc_server(servicer, lambda s: s.add_insecure_port(front.backend_target)):
            port = await front.start("127.0.0.1", 0)
            try:
                assert await _who_am_i(port, anchors, app_svid) == APP_ID
                assert await _who_am_i(port, anchors, impostor) == "error: UNAVAILABLE"
            finally:
                await front.aclose()
    assert servicer.calls == 1
