"""Standalone sentry end to end over real gRPC and TLS (contract §3, §4.1, §5, §6)."""

from __future__ import annotations

import os
import re
import signal
import ssl
import stat
import time
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.plugins.sentry.ca import generate, pem
from tests.integration.sentry.client import ca_stub, handshake
from tests.integration.sentry.conftest import SentryProcess, run_sentry
from tests.pki import csr_pem, new_key

Request = sentry_pb2.SignCertificateRequest


def _request(**fields):  # type: ignore[no-untyped-def]
    base = {"id": "myapp", "namespace": "default", "certificate_signing_request": csr_pem()}
    return Request(**{**base, **fields})


def test_serving_identity(sentry: SentryProcess) -> None:
    shake = handshake(sentry.port, sentry.trust_anchors)  # verifies leaf -> issuer -> ca.crt
    assert shake.alpn == "h2"
    assert shake.version == "TLSv1.3"
    leaf = shake.leaf
    assert leaf.subject == x509.Name([])
    assert isinstance(leaf.public_key(), ed25519.Ed25519PublicKey)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert list(san.value) == [
        x509.UniformResourceIdentifier("spiffe://localhost/ns/default/dapr-sentry")
    ]
    issuer = pem.decode_certificates((sentry.credentials / "issuer.crt").read_bytes())[0]
    leaf.verify_directly_issued_by(issuer)
    assert handshake(sentry.port, sentry.trust_anchors, ssl.TLSVersion.TLSv1_2).version == "TLSv1.2"
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(sentry.port, sentry.trust_anchors, ssl.TLSVersion.TLSv1_1)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(
            sentry.port,
            generate("localhost", "default", __import__("datetime").timedelta()).trust_anchors_pem,
        )


def test_generated_files(sentry: SentryProcess) -> None:
    for name in ("ca.crt", "issuer.crt", "issuer.key"):
        assert stat.S_IMODE(os.stat(sentry.credentials / name).st_mode) == 0o600
    (root,) = pem.decode_certificates(sentry.trust_anchors)
    assert root.subject.rfc4514_string() == "O=localhost"


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_sign_certificate(sentry: SentryProcess, kind: str) -> None:
    private = new_key(kind)
    with ca_stub(sentry.port, sentry.trust_anchors) as (stub, tunnel):
        response = stub.SignCertificate(
            _request(certificate_signing_request=csr_pem(private)), timeout=10
        )
    assert tunnel.leaves, "the call went through a verified TLS connection"
    chain = response.workload_certificate
    assert chain.count(b"-----BEGIN CERTIFICATE-----") == 2
    assert chain.endswith(b"-----END CERTIFICATE-----\n")
    leaf, issuer = pem.decode_certificates(chain)
    assert pem.encode_chain([issuer]) == (sentry.credentials / "issuer.crt").read_bytes()
    assert list(response.trust_chain_certificates) == [sentry.trust_anchors]
    assert (
        response.valid_until.ToDatetime().replace(tzinfo=leaf.not_valid_after_utc.tzinfo)
        == leaf.not_valid_after_utc
    )
    assert not response.HasField("jwt") and not response.per_audience_jwts
    leaf.verify_directly_issued_by(issuer)
    assert leaf.public_key() == private.public_key()
    uris = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(u.value) for u in uris] == ["spiffe://public/ns/default/myapp"]
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime.total_seconds() == 24 * 3600 + 15 * 60


def test_requested_trust_domain_and_control_plane_dns(sentry: SentryProcess) -> None:
    with ca_stub(sentry.port, sentry.trust_anchors) as (stub, _):
        response = stub.SignCertificate(
            _request(
                id="dapr-injector", trust_domain="localhost", token_validator=Request.INSECURE
            ),
            timeout=10,
        )
    leaf = pem.decode_certificates(response.workload_certificate)[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://localhost/ns/default/dapr-injector"
    ]
    assert san.get_values_for_type(x509.DNSName) == ["dapr-sidecar-injector.default.svc"]


GARBAGE_CSR_DER = pem.encode("CERTIFICATE REQUEST", b"\x30\x03\x02\x01\x00")


def _tampered_csr() -> bytes:
    block = next(pem.blocks(csr_pem()))
    der = bytearray(block.der)
    der[-1] ^= 0x01  # flip a bit of the signature
    return pem.encode("CERTIFICATE REQUEST", bytes(der))


CASES = [
    (
        {"token_validator": Request.JWKS},
        grpc.StatusCode.INVALID_ARGUMENT,
        "the requested validator is not enabled",
    ),
    (
        {"token_validator": Request.KUBERNETES},
        grpc.StatusCode.INVALID_ARGUMENT,
        "the requested validator is not enabled",
    ),
    (
        {"token_validator": -1},
        grpc.StatusCode.INVALID_ARGUMENT,
        "the requested validator is not enabled",
    ),
    (
        {"id": ""},
        grpc.StatusCode.PERMISSION_DENIED,
        "invalid request: parameter app-id cannot be empty",
    ),
    (
        {"id": "a.b"},
        grpc.StatusCode.PERMISSION_DENIED,
        "invalid request: parameter app-id cannot contain dots",
    ),
    (
        {"id": "x" * 65},
        grpc.StatusCode.PERMISSION_DENIED,
        "invalid request: app ID must be 64 characters or less",
    ),
    (
        {"namespace": ""},
        grpc.StatusCode.PERMISSION_DENIED,
        "invalid request: namespace is required",
    ),
    (
        {"certificate_signing_request": b""},
        grpc.StatusCode.PERMISSION_DENIED,
        "invalid request: CSR is required",
    ),
    (
        {"id": "", "namespace": "", "certificate_signing_request": b""},
        grpc.StatusCode.PERMISSION_DENIED,
        "invalid request: parameter app-id cannot be empty\nCSR is required\nnamespace is required",
    ),
    (
        {"trust_domain": "UPPER"},
        grpc.StatusCode.PERMISSION_DENIED,
        (
            "trust domain characters are limited to lowercase letters, numbers, dots, "
            "dashes, and underscores"
        ),
    ),
    (
        {"certificate_signing_request": b"not pem"},
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid certificate signing request",
    ),
    (
        {"certificate_signing_request": pem.encode("PUBLIC KEY", b"\x00")},
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid certificate signing request",
    ),
    (
        {"certificate_signing_request": GARBAGE_CSR_DER},
        grpc.StatusCode.INVALID_ARGUMENT,
        re.compile("^failed to parse certificate signing request: .+"),
    ),
    (
        {"certificate_signing_request": _tampered_csr()},
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid signature",
    ),
    ({"id": "has space"}, grpc.StatusCode.INTERNAL, "failed to sign certificate"),
    ({"namespace": ".."}, grpc.StatusCode.INTERNAL, "failed to sign certificate"),
]


@pytest.mark.parametrize(("fields", "code", "message"), CASES)
def test_errors(sentry: SentryProcess, fields, code, message) -> None:  # type: ignore[no-untyped-def]
    with (
        ca_stub(sentry.port, sentry.trust_anchors) as (stub, _),
        pytest.raises(grpc.RpcError) as caught,
    ):
        stub.SignCertificate(_request(**fields), timeout=10)
    assert caught.value.code() == code
    if isinstance(message, re.Pattern):
        assert message.match(caught.value.details())
    else:
        assert caught.value.details() == message


def test_metrics(sentry: SentryProcess) -> None:
    before = sentry.metrics()
    with ca_stub(sentry.port, sentry.trust_anchors) as (stub, _):
        for _ in range(3):
            stub.SignCertificate(_request(), timeout=10)
        for _ in range(2):
            with pytest.raises(grpc.RpcError):
                stub.SignCertificate(_request(id=""), timeout=10)
    after = sentry.metrics()

    def delta(name: str) -> float:
        return after[name] - before.get(name, 0)

    assert delta("dapr_sentry_cert_sign_request_received_total") == 5
    assert delta("dapr_sentry_cert_sign_success_total") == 3
    assert delta('dapr_sentry_cert_sign_failure_total{reason="sign"}') == 2
    assert after["dapr_sentry_servercert_issue_failed_total"] == 0
    assert after["dapr_sentry_issuercert_changed_total"] >= 1
    issuer = pem.decode_certificates((sentry.credentials / "issuer.crt").read_bytes())[0]
    assert (
        after["dapr_sentry_issuercert_expiry_timestamp"] == issuer.not_valid_after_utc.timestamp()
    )


def test_namespace_from_environment(tmp_path: Path) -> None:
    with run_sentry(
        tmp_path / "creds", "--trust-domain=example.org", env={"NAMESPACE": "dapr-system"}
    ) as sentry:
        leaf = handshake(sentry.port, sentry.trust_anchors).leaf
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [u.value for u in san] == ["spiffe://example.org/ns/dapr-system/dapr-sentry"]
        (root,) = pem.decode_certificates(sentry.trust_anchors)
        assert root.subject.rfc4514_string() == "O=example.org"
        expected = "spiffe://example.org/ns/dapr-system/dapr-sentry"
        with ca_stub(sentry.port, sentry.trust_anchors, expected) as (stub, _):
            response = stub.SignCertificate(
                _request(id="dapr-scheduler", namespace="dapr-system", trust_domain="example.org"),
                timeout=10,
            )
        leaf = pem.decode_certificates(response.workload_certificate)[0]
        dns = leaf.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.DNSName)
        assert dns == [
            f"dapr-scheduler-server-{i}.dapr-scheduler-server.dapr-system.svc.example.org"
            for i in range(3)
        ]
        assert sentry.stop()[0] == 0


def test_restart_keeps_the_root_and_writes_nothing(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    with run_sentry(creds) as first:
        anchors = first.trust_anchors
        assert first.stop()[0] == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in creds.iterdir()}
    with run_sentry(creds) as second:
        assert second.trust_anchors == anchors
        with ca_stub(second.port, anchors) as (stub, _):
            stub.SignCertificate(_request(), timeout=10)
        assert second.process.send_signal(signal.SIGINT) is None
        second.process.communicate(timeout=30)
        assert second.process.returncode == 0
    assert {p.name: p.stat().st_mtime_ns for p in creds.iterdir()} == stamps


def _wait_for(predicate, timeout: float = 6.0) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_rotating_the_issuer_files_is_picked_up(tmp_path: Path) -> None:
    import datetime

    creds = tmp_path / "creds"
    with run_sentry(creds) as sentry:
        old_anchors = sentry.trust_anchors
        changed_before = sentry.metrics()["dapr_sentry_issuercert_changed_total"]
        fresh = generate("localhost", "default", datetime.timedelta(minutes=15))
        (creds / "issuer.key").write_bytes(fresh.issuer_key_pem)
        (creds / "issuer.crt").write_bytes(fresh.issuer_chain_pem)
        (creds / "ca.crt").write_bytes(fresh.trust_anchors_pem)

        def serving_new_leaf() -> bool:
            try:
                leaf = handshake(sentry.port, fresh.trust_anchors_pem).leaf
            except (ssl.SSLError, OSError):
                return False
            leaf.verify_directly_issued_by(fresh.issuer)
            return True

        elapsed = _wait_for(serving_new_leaf)
        assert elapsed < 4.0
        with ca_stub(sentry.port, fresh.trust_anchors_pem) as (stub, _):
            response = stub.SignCertificate(_request(), timeout=10)
        assert list(response.trust_chain_certificates) == [fresh.trust_anchors_pem]
        _, issuer = pem.decode_certificates(response.workload_certificate)
        assert issuer == fresh.issuer
        metrics = sentry.metrics()
        assert metrics["dapr_sentry_issuercert_changed_total"] > changed_before
        assert (
            metrics["dapr_sentry_issuercert_expiry_timestamp"]
            == fresh.issuer.not_valid_after_utc.timestamp()
        )
        assert old_anchors != fresh.trust_anchors_pem

        # Broken files are reported and the current CA keeps serving.
        (creds / "issuer.key").write_bytes(generate("x", "y", datetime.timedelta()).issuer_key_pem)
        time.sleep(3)
        with ca_stub(sentry.port, fresh.trust_anchors_pem) as (stub, _):
            stub.SignCertificate(_request(), timeout=10)
        code, out = sentry.stop()
        assert code == 0
        assert "still serving the previous one" in out


def test_bring_your_own_ecdsa_bundle(tmp_path: Path) -> None:
    from tests.pki import ByoCA, pem_of

    byo = ByoCA("ecdsa")
    creds = tmp_path / "creds"
    creds.mkdir()
    files = {
        "ca.crt": byo.files[0],
        "issuer.crt": byo.files[1] + pem_of(byo.root),
        "issuer.key": byo.files[2],
    }
    for name, data in files.items():
        (creds / name).write_bytes(data)
    with run_sentry(creds) as sentry:
        leaf = handshake(sentry.port, byo.files[0]).leaf
        leaf.verify_directly_issued_by(byo.issuer)
        with ca_stub(sentry.port, byo.files[0]) as (stub, _):
            response = stub.SignCertificate(_request(), timeout=10)
        assert pem.decode_certificates(response.workload_certificate)[1:] == [byo.issuer]
        assert list(response.trust_chain_certificates) == [byo.files[0]]
        assert sentry.stop()[0] == 0
    assert {name: (creds / name).read_bytes() for name in files} == files


def test_jwt_issuance_when_enabled(tmp_path: Path) -> None:
    import base64
    import json

    creds = tmp_path / "creds"
    with run_sentry(creds, "--jwt-enabled", "--jwt-issuer=https://issuer.example") as sentry:
        for name in ("jwt.key", "jwks.json"):
            assert stat.S_IMODE(os.stat(creds / name).st_mode) == 0o600
        with ca_stub(sentry.port, sentry.trust_anchors) as (stub, _):
            response = stub.SignCertificate(_request(jwt_audiences=["aud-1"]), timeout=10)
        assert sentry.stop()[0] == 0

    def claims(token: str) -> dict[str, object]:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]

    combined = claims(response.jwt.value)
    assert combined["aud"] == ["public", "aud-1"]
    assert combined["sub"] == "spiffe://public/ns/default/myapp"
    assert combined["iss"] == "https://issuer.example"
    assert sorted(response.per_audience_jwts) == ["aud-1", "public"]
    assert claims(response.per_audience_jwts["aud-1"].value)["aud"] == ["aud-1"]
