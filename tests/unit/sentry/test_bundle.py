"""CA generation and bring-your-own verification (contract §2.1, §2.2)."""

from __future__ import annotations

import datetime
import hashlib
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from daprplane.plugins.sentry.ca import BundleError, generate, pem, verify
from tests.pki import CLIENT_AUTH, NOW, SERVER_AUTH, ByoCA, byo_ca_cert, key_pem, new_key, pem_of

SKEW = timedelta(minutes=15)


def _ext(cert: x509.Certificate, cls):  # type: ignore[no-untyped-def]
    return cert.extensions.get_extension_for_class(cls)


def test_generated_root_and_issuer_have_daprs_shape() -> None:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    bundle = generate("example.org", "dapr-system", SKEW, now=now)
    (root,) = bundle.trust_anchors
    (issuer,) = bundle.issuer_chain
    for cert in (root, issuer):
        assert isinstance(cert.public_key(), ed25519.Ed25519PublicKey)
        assert cert.signature_algorithm_oid.dotted_string == "1.3.101.112"
        assert cert.not_valid_before_utc == now - SKEW
        assert cert.not_valid_after_utc == now + timedelta(days=365)
        assert 0 < cert.serial_number < 2**128
        bc = _ext(cert, x509.BasicConstraints)
        assert bc.critical and bc.value.ca and bc.value.path_length is None
        assert _ext(cert, x509.KeyUsage).critical
        raw = cert.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        assert (
            _ext(cert, x509.SubjectKeyIdentifier).value.digest == hashlib.sha256(raw).digest()[:20]
        )
        with pytest.raises(x509.ExtensionNotFound):
            _ext(cert, x509.AuthorityKeyIdentifier)
        with pytest.raises(x509.ExtensionNotFound):
            _ext(cert, x509.SubjectAlternativeName)
    assert root.subject.rfc4514_string() == "O=example.org"
    assert root.issuer == root.subject
    assert issuer.subject.rfc4514_string() == "O=spiffe://example.org/ns/dapr-system/dapr-sentry"
    assert issuer.issuer == root.subject
    root_ku, issuer_ku = _ext(root, x509.KeyUsage).value, _ext(issuer, x509.KeyUsage).value
    assert root_ku.digital_signature and root_ku.key_cert_sign and not root_ku.crl_sign
    assert issuer_ku.digital_signature and issuer_ku.key_cert_sign and issuer_ku.crl_sign
    issuer.verify_directly_issued_by(root)
    assert root.serial_number != issuer.serial_number


def test_generated_pem_is_go_style_and_round_trips() -> None:
    bundle = generate("localhost", "default", SKEW)
    assert bundle.trust_anchors_pem.count(b"-----BEGIN CERTIFICATE-----") == 1
    assert bundle.issuer_chain_pem.count(b"-----BEGIN CERTIFICATE-----") == 1
    assert bundle.issuer_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    for text in (bundle.trust_anchors_pem, bundle.issuer_chain_pem):
        assert text.endswith(b"-----END CERTIFICATE-----\n")
        assert all(len(line) <= 64 for line in text.splitlines())
    again = verify(bundle.trust_anchors_pem, bundle.issuer_chain_pem, bundle.issuer_key_pem)
    assert again.trust_anchors_pem == bundle.trust_anchors_pem
    assert again.issuer_chain_pem == bundle.issuer_chain_pem
    assert again.issuer_key_pem == bundle.issuer_key_pem


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_byo_bundle_verifies_and_is_normalised(kind: str) -> None:
    byo = ByoCA(kind)
    ca, issuer, _ = byo.files
    legacy = key_pem(
        byo.issuer_key,
        serialization.PrivateFormat.TraditionalOpenSSL
        if kind != "ed25519"
        else serialization.PrivateFormat.PKCS8,
    )
    bundle = verify(
        b"comment before\n" + ca + b"trailing text\n", issuer + pem_of(byo.root), legacy
    )
    assert bundle.trust_anchors == (byo.root,)
    assert bundle.issuer_chain == (byo.issuer,), (
        "a self-signed root at the end of the chain is dropped"
    )
    assert bundle.trust_anchors_pem == pem_of(byo.root)
    assert bundle.issuer_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_multiple_roots_and_an_intermediate() -> None:
    byo = ByoCA()
    other = byo_ca_cert("other", new_key())
    middle_key = new_key()
    middle = byo_ca_cert("middle", middle_key, byo.issuer_key, byo.issuer)
    bundle = verify(pem_of(other, byo.root), pem_of(middle, byo.issuer), key_pem(middle_key))
    assert len(bundle.trust_anchors) == 2
    assert bundle.issuer_chain == (middle, byo.issuer)


def test_anchor_that_is_not_self_signed() -> None:
    byo = ByoCA()
    with pytest.raises(BundleError, match=r"^certificate in trust anchor is not self-signed$"):
        verify(pem_of(byo.root, byo.issuer), *byo.files[1:])


def test_self_signed_anchor_that_is_not_a_ca() -> None:
    leaf_key = new_key()
    not_ca = byo_ca_cert("leaf", leaf_key, ca=False)
    byo = ByoCA()
    with pytest.raises(BundleError, match=r"^certificate in trust anchor is not self-signed$"):
        verify(pem_of(not_ca), *byo.files[1:])


def test_broken_issuer_chain() -> None:
    byo, other = ByoCA(), ByoCA()
    with pytest.raises(BundleError, match=r"^certificate chain is not valid$"):
        verify(byo.files[0], pem_of(byo.issuer, other.root), byo.files[2])


def test_issuer_key_mismatch() -> None:
    byo = ByoCA()
    with pytest.raises(BundleError, match=r"^issuer key does not match issuer certificate$"):
        verify(*byo.files[:2], key_pem(new_key()))


def test_issuer_from_another_root() -> None:
    byo, other = ByoCA(), ByoCA()
    with pytest.raises(
        BundleError,
        match=(
            r"^issuer chain does not belong to trust anchors: x509: certificate signed "
            r"by unknown authority$"
        ),
    ):
        verify(other.files[0], *byo.files[1:])


def test_expired_issuer() -> None:
    byo = ByoCA(not_before=NOW - timedelta(days=10), not_after=NOW - timedelta(days=1))
    with pytest.raises(BundleError) as caught:
        verify(*byo.files)
    assert str(caught.value).startswith(
        "issuer chain does not belong to trust anchors: x509: certificate has expired or is not "
        "yet valid: current time "
    )
    assert " is after " in str(caught.value)


def test_expired_root() -> None:
    byo = ByoCA()
    byo.root = byo_ca_cert("root", byo.root_key, not_after=NOW - timedelta(minutes=1))
    with pytest.raises(
        BundleError,
        match=r"^issuer chain does not belong to trust anchors: x509: certificate has expired",
    ):
        verify(*byo.files)


def test_not_yet_valid_issuer() -> None:
    byo = ByoCA(not_before=NOW + timedelta(days=1))
    with pytest.raises(BundleError, match=" is before "):
        verify(*byo.files)


def test_issuer_without_server_auth_eku() -> None:
    byo = ByoCA(eku=[CLIENT_AUTH])
    with pytest.raises(
        BundleError,
        match=(
            r"^issuer chain does not belong to trust anchors: x509: certificate "
            r"specifies an incompatible key usage$"
        ),
    ):
        verify(*byo.files)
    verify(*ByoCA(eku=[SERVER_AUTH, CLIENT_AUTH]).files)


@pytest.mark.parametrize(
    ("which", "data", "message"),
    [
        (0, b"", "failed to decode trust anchors: no certificates found"),
        (
            0,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "failed to decode trust anchors: no certificates found",
        ),
        (1, b"garbage", "failed to decode issuer certificate chain: no certificates found"),
        (2, b"", "failed to decode issuer key: no PEM data found"),
        (
            2,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "failed to decode issuer key: unsupported block type 'CERTIFICATE'",
        ),
    ],
)
def test_undecodable_files(which: int, data: bytes, message: str) -> None:
    files = list(ByoCA().files)
    files[which] = data
    with pytest.raises(BundleError) as caught:
        verify(*files)
    assert str(caught.value) == message


def test_decoding_stops_at_the_first_non_certificate_block() -> None:
    byo, other = ByoCA(), ByoCA()
    ca = pem_of(byo.root) + key_pem(new_key()) + pem_of(other.root)
    bundle = verify(ca, *byo.files[1:])
    assert bundle.trust_anchors == (byo.root,)


def test_encode_chain_skips_self_signed() -> None:
    byo = ByoCA()
    assert pem.encode_chain([byo.issuer, byo.root]) == pem_of(byo.issuer)
