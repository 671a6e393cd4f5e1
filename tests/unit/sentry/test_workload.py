"""Workload certificates carry exactly the fields of contract §3.3."""

from __future__ import annotations

import datetime
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from daprplane.core.security.spiffe import SpiffeId
from daprplane.plugins.sentry.ca import generate, sign_workload, verify
from tests.pki import ByoCA, new_key

TTL, SKEW = timedelta(hours=24), timedelta(minutes=15)


def _sign(bundle=None, **kwargs):  # type: ignore[no-untyped-def]
    bundle = bundle or generate("localhost", "default", SKEW)
    leaf = sign_workload(
        bundle,
        new_key().public_key(),
        SpiffeId.for_app("public", "ns1", "app1"),
        ttl=TTL,
        skew=SKEW,
        **kwargs,
    )
    return bundle, leaf


def test_every_field() -> None:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    bundle, leaf = _sign(now=now)
    assert leaf.subject == x509.Name([])
    assert leaf.issuer == bundle.issuer.subject
    assert leaf.not_valid_before_utc == now - SKEW
    assert leaf.not_valid_after_utc == now + TTL
    assert 0 < leaf.serial_number < 2**128
    leaf.verify_directly_issued_by(bundle.issuer)
    extensions = {e.oid: e for e in leaf.extensions}
    san = extensions[x509.SubjectAlternativeName.oid]
    assert san.critical
    assert list(san.value) == [x509.UniformResourceIdentifier("spiffe://public/ns/ns1/app1")]
    ku = extensions[x509.KeyUsage.oid]
    assert ku.critical and ku.value.digital_signature
    assert not (ku.value.key_encipherment or ku.value.key_cert_sign or ku.value.crl_sign)
    eku = extensions[x509.ExtendedKeyUsage.oid]
    assert not eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    akid = extensions[x509.AuthorityKeyIdentifier.oid].value
    skid = bundle.issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert akid.key_identifier == skid.digest
    assert x509.BasicConstraints.oid not in extensions
    assert x509.SubjectKeyIdentifier.oid not in extensions
    assert set(extensions) == {
        x509.SubjectAlternativeName.oid,
        x509.KeyUsage.oid,
        x509.ExtendedKeyUsage.oid,
        x509.AuthorityKeyIdentifier.oid,
    }


def test_dns_names_and_extra_extensions() -> None:
    images = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.57683.100.1"), b"\x04\x02[]"
    )
    _, leaf = _sign(dns_names=["a.example", "b.example"], extensions=[images])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example", "b.example"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://public/ns/ns1/app1"
    ]
    extra = leaf.extensions.get_extension_for_oid(images.oid)
    assert not extra.critical and extra.value.value == b"\x04\x02[]"


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_byo_issuer_key_types_sign(kind: str) -> None:
    bundle = verify(*ByoCA(kind).files)
    _, leaf = _sign(bundle)
    leaf.verify_directly_issued_by(bundle.issuer)
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == "sha256"
    assert isinstance(bundle.issuer.public_key(), ec.EllipticCurvePublicKey | rsa.RSAPublicKey)


def test_serials_differ() -> None:
    bundle = generate("localhost", "default", SKEW)
    serials = {_sign(bundle)[1].serial_number for _ in range(20)}
    assert len(serials) == 20


def test_alternating_issuers_each_sign_their_own_leaves() -> None:
    """The per-issuer template must follow the bundle it is given (a reload swaps bundles)."""
    first, second = (generate("localhost", "default", SKEW) for _ in range(2))
    for bundle in (first, second, first, second):
        _, leaf = _sign(bundle)
        leaf.verify_directly_issued_by(bundle.issuer)
        akid = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        skid = bundle.issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert akid.key_identifier == skid.digest
