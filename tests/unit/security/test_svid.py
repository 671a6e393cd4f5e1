from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from daprplane.core.security.svid import Svid, SvidError, load_pem_chain, verify_leaf
from tests.pki import SentryCA, pem_of

ID = "spiffe://localhost/ns/default/app"


@pytest.fixture(scope="module")
def ca() -> SentryCA:
    return SentryCA()


def _leaf(authority: SentryCA, uris: list[str], **options: object):  # type: ignore[no-untyped-def]
    return authority.leaf(uris, ed25519.Ed25519PrivateKey.generate().public_key(), **options)  # type: ignore[arg-type]


def test_svid_round_trips_through_pem(ca: SentryCA) -> None:
    svid = ca.svid(ID)
    again = Svid.from_pem(svid.chain_pem, svid.private_key_pem)
    assert str(again.spiffe_id) == ID
    assert again.certificates == svid.certificates
    assert len(load_pem_chain(svid.chain_pem)) == 2


def test_renewal_is_at_half_life(ca: SentryCA) -> None:
    svid = ca.svid(ID, ttl=timedelta(hours=24), skew=timedelta(minutes=15))
    assert svid.renew_at == svid.not_before + timedelta(hours=12, minutes=7, seconds=30)


@pytest.mark.parametrize(
    ("uris", "options", "message"),
    [
        ([], {}, "no URI SAN"),
        ([ID, "spiffe://localhost/ns/default/other"], {}, "more than one URI SAN"),
        (["https://example.com/x"], {}, "scheme"),
        ([ID], {"ca": True}, "CA flag"),
        ([ID], {"cert_sign": True}, "keyCertSign"),
    ],
)
def test_leaf_rules(ca: SentryCA, uris: list[str], options: dict, message: str) -> None:
    with pytest.raises(SvidError, match=message):
        verify_leaf(_leaf(ca, uris, **options))


def test_dns_sans_are_allowed_beside_the_uri(ca: SentryCA) -> None:
    assert str(verify_leaf(_leaf(ca, [ID], dns=["dapr-webhook.dapr-system.svc"]))) == ID


def test_key_must_match_leaf(ca: SentryCA) -> None:
    svid = ca.svid(ID)
    with pytest.raises(SvidError, match="does not match the private key"):
        Svid.from_chain(svid.certificates, ed25519.Ed25519PrivateKey.generate())


@pytest.mark.parametrize(
    "data", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
)
def test_bad_chains(data: bytes) -> None:
    with pytest.raises(SvidError, match="failed to parse certificate chain"):
        load_pem_chain(data)


def test_empty_chain_and_bad_key(ca: SentryCA) -> None:
    with pytest.raises(SvidError, match="empty"):
        Svid.from_chain((), ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(SvidError, match="failed to parse private key"):
        Svid.from_pem(pem_of(ca.root), b"nope")


def test_certificate_with_an_unknown_version_is_a_clear_error() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from daprplane.plugins.sentry.ca import pem as pem_codec

    der = bytearray(SentryCA().root.public_bytes(Encoding.DER))
    version = der.index(bytes([0xA0, 0x03, 0x02, 0x01, 0x02]))  # [0] EXPLICIT INTEGER v3
    der[version + 4] = 0x05
    with pytest.raises(SvidError, match="failed to parse certificate chain"):
        load_pem_chain(pem_codec.encode("CERTIFICATE", bytes(der)))
