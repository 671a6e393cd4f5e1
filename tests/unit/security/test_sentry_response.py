from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.core.security import csr
from daprplane.core.security.sentry_client import SentryError, sentry_id, validate_response
from tests.pki import SentryCA, pem_of

CA = SentryCA()
ID = "spiffe://localhost/ns/dapr-system/dapr-placement"


def _response(chain: bytes, *, valid_until: bool = True) -> sentry_pb2.SignCertificateResponse:
    response = sentry_pb2.SignCertificateResponse(
        workload_certificate=chain, trust_chain_certificates=[b"ignored garbage"]
    )
    if valid_until:
        response.valid_until.GetCurrentTime()
    return response


def test_valid_response() -> None:
    key = csr.generate_key()
    leaf = CA.leaf([ID], key.public_key(), ttl=timedelta(hours=24))
    svid = validate_response(_response(pem_of(leaf, CA.issuer)), key)
    assert str(svid.spiffe_id) == ID
    assert svid.certificates == (leaf, CA.issuer)


def test_sentry_id() -> None:
    assert str(sentry_id("cluster.local", "dapr-system")) == (
        "spiffe://cluster.local/ns/dapr-system/dapr-sentry"
    )


@pytest.mark.parametrize(
    ("uris", "message"),
    [([], "no URI SAN"), ([ID, ID + "x"], "more than one URI SAN"), (["urn:x"], "scheme")],
)
def test_leaf_must_carry_one_spiffe_id(uris: list[str], message: str) -> None:
    key = csr.generate_key()
    chain = pem_of(CA.leaf(uris, key.public_key()), CA.issuer)
    with pytest.raises(SentryError, match=message):
        validate_response(_response(chain), key)


def test_other_checks() -> None:
    key = csr.generate_key()
    chain = pem_of(CA.leaf([ID], key.public_key()), CA.issuer)
    with pytest.raises(SentryError, match="nil Timestamp"):
        validate_response(_response(chain, valid_until=False), key)
    bad_time = _response(chain)
    bad_time.valid_until.nanos = -1
    with pytest.raises(SentryError, match="nanos"):
        validate_response(bad_time, key)
    bad_time.valid_until.nanos, bad_time.valid_until.seconds = 0, 2**62
    with pytest.raises(SentryError, match="out of range"):
        validate_response(bad_time, key)
    with pytest.raises(SentryError, match="does not match the private key"):
        validate_response(_response(chain), ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(SentryError, match="failed to parse certificate chain"):
        validate_response(_response(b""), key)


_KEY = ed25519.Ed25519PrivateKey.generate()
_GOOD_LEAF = pem_of(CA.leaf([ID], _KEY.public_key()))
_GOOD_DER = CA.leaf([ID], _KEY.public_key()).public_bytes(serialization.Encoding.DER)


def _pem_block(body: bytes) -> bytes:
    return (
        b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(body) + b"-----END CERTIFICATE-----\n"
    )


def _flip(where_what: tuple[int, int]) -> bytes:
    where, what = where_what
    der = bytearray(_GOOD_DER)
    der[where] ^= what
    return _pem_block(bytes(der))


@settings(max_examples=300, deadline=None)
@given(
    chain=st.one_of(
        st.binary(max_size=600),
        st.binary(max_size=600).map(_pem_block),
        # A real certificate with bytes flipped inside its DER.
        st.tuples(st.integers(0, 400), st.integers(1, 255)).map(
            lambda t: _pem_block(
                bytes(
                    b ^ (t[1] if i == t[0] else 0)
                    for i, b in enumerate(
                        CA.leaf([ID], _KEY.public_key()).public_bytes(
                            __import__("cryptography").hazmat.primitives.serialization.Encoding.DER
                        )
                    )
                )
            )
        ),
        st.sampled_from([_GOOD_LEAF]),
    ),
    seconds=st.integers(-(2**63), 2**63 - 1),
    nanos=st.integers(-(2**31), 2**31 - 1),
    has_time=st.booleans(),
    trust=st.lists(st.binary(max_size=64), max_size=3),
)
def test_fuzzed_responses_fail_cleanly(
    chain: bytes, seconds: int, nanos: int, has_time: bool, trust: list[bytes]
) -> None:
    response = sentry_pb2.SignCertificateResponse(
        workload_certificate=chain, trust_chain_certificates=trust
    )
    if has_time:
        response.valid_until.seconds, response.valid_until.nanos = seconds, nanos
    try:
        svid = validate_response(response, _KEY)
    except SentryError as error:
        assert str(error)
    else:
        # Hypothesis also splices the valid leaf into mutants whose SAN still parses; Dapr's
        # client accepts any leaf for its own key (peers verify the chain later), and so do we.
        assert svid.leaf.public_key() == _KEY.public_key()
        assert svid.spiffe_id.trust_domain
