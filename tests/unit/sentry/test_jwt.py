"""JWT material (generation, loading, verification) and token issuance."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from daprplane.plugins.sentry import jwt as sentry_jwt
from daprplane.plugins.sentry.jwt import JwtMaterialError, load_jwt_material

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
P256_KEY = ec.generate_private_key(ec.SECP256R1())
P384_KEY = ec.generate_private_key(ec.SECP384R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def pem(key, fmt=serialization.PrivateFormat.PKCS8) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def jwks_for(key, **extra) -> bytes:
    return json.dumps({"keys": [{**sentry_jwt.public_jwk(key), **extra}]}).encode()


def load(key_pem, jwks_json, *, enabled=True, key_id="", algorithm="RS256"):
    return load_jwt_material(
        key_pem, jwks_json, enabled=enabled, key_id=key_id, algorithm=algorithm
    )


def error_of(*args, **kwargs) -> str:
    with pytest.raises(JwtMaterialError) as caught:
        load(*args, **kwargs)
    return str(caught.value)


# -- kid and JSON --------------------------------------------------------------------------------


def test_kid_is_std_base64_of_the_rfc7638_thumbprint():
    # RFC 7638 section 3.1: thumbprint NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs (base64url).
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJE"
        "CPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Q"
        "vzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6"
        "WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    kid = sentry_jwt.thumbprint_kid({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256"})
    assert kid == "NzbLsXh8uDCcd+6MNwXF4W/7noWXFZAfHkxZsRGC9Xs="


def test_go_json_sorts_and_escapes_like_encoding_json():
    assert (
        sentry_jwt.go_json({"b": "<&>", "a": "\u2028é"})
        == b'{"a":"\\u2028\xc3\xa9","b":"\\u003c\\u0026\\u003e"}'
    )
    assert sentry_jwt.go_json({"b": 1, "a": 2}, sort_keys=False) == b'{"b":1,"a":2}'


# -- generation ----------------------------------------------------------------------------------


def test_generates_rsa_2048_and_forces_rs256():
    material, generated = load(None, None, algorithm="ES256")
    assert generated
    assert isinstance(material.private_key, rsa.RSAPrivateKey)
    assert material.private_key.key_size == 2048
    assert material.algorithm == "RS256"
    assert material.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    jwk = sentry_jwt.public_jwk(material.private_key)
    assert material.kid == sentry_jwt.thumbprint_kid(jwk)
    assert len(base64.b64decode(material.kid, validate=True)) == 32
    expected = (
        f'{{"keys":[{{"alg":"RS256","e":"{jwk["e"]}","kid":"{material.kid}","kty":"RSA",'
        f'"n":"{jwk["n"]}","use":"sig"}}]}}'
    )
    assert material.jwks_json == expected.encode()
    assert material.jwks == json.loads(expected)


def test_generated_material_uses_the_configured_key_id_everywhere():
    material, generated = load(None, None, key_id="my-key")
    assert generated and material.kid == "my-key"
    assert json.loads(material.jwks_json)["keys"][0]["kid"] == "my-key"
    # ...so the next start, with the same --jwt-key-id, accepts what was stored.
    again, generated = load(material.key_pem, material.jwks_json, key_id="my-key")
    assert not generated and again.kid == "my-key"


def test_stored_material_is_reused():
    material, _ = load(None, None)
    again, generated = load(material.key_pem, material.jwks_json)
    assert not generated
    assert again.kid == material.kid
    assert again.jwks_json == material.jwks_json
    assert again.private_key.private_numbers() == material.private_key.private_numbers()


def test_nothing_stored_and_disabled_means_no_material():
    assert load(None, None, enabled=False) == (None, False)
    assert load(pem(RSA_KEY), None, enabled=False) == (None, False)
    assert load(None, jwks_for(RSA_KEY), enabled=False) == (None, False)


def test_key_without_jwks_counts_as_missing_when_enabled():
    material, generated = load(pem(RSA_KEY), None)
    assert generated
    assert material.private_key.public_key() != RSA_KEY.public_key()


# -- loading -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
@pytest.mark.parametrize(
    ("key", "algorithm"),
    [(RSA_KEY, "RS256"), (RSA_KEY, "PS512"), (P256_KEY, "ES256"), (P384_KEY, "ES384")],
)
def test_accepts_pkcs8_pkcs1_and_sec1_keys(key, algorithm, fmt):
    material, generated = load(pem(key, fmt), jwks_for(key), algorithm=algorithm)
    assert not generated
    assert material.algorithm == algorithm
    assert material.key_pem == pem(key)
    assert material.kid == sentry_jwt.thumbprint_kid(sentry_jwt.public_jwk(key))


def test_ed25519_key_with_eddsa():
    material, _ = load(pem(ED_KEY), jwks_for(ED_KEY), algorithm="EdDSA")
    assert material.kid == sentry_jwt.thumbprint_kid(sentry_jwt.public_jwk(ED_KEY))


def test_stored_material_is_verified_even_when_disabled():
    message = error_of(pem(RSA_KEY), jwks_for(OTHER_RSA_KEY), enabled=False)
    assert message == (
        "failed to verify JWKS: JWKS doesn't contain a matching public key for the JWT signing key"
    )
    assert error_of(b"garbage", None, enabled=False).startswith(
        "failed to load JWT signing key: failed to decode JWT signing key: "
    )


def test_algorithm_is_checked_only_when_enabled():
    material, _ = load(pem(P256_KEY), jwks_for(P256_KEY), enabled=False, algorithm="RS256")
    assert material is not None


@pytest.mark.parametrize(
    ("key", "algorithm", "reason"),
    [
        (P256_KEY, "RS256", "RSA algorithm RS256 requires an RSA key, but got *ecdsa.PrivateKey"),
        (ED_KEY, "PS256", "RSA algorithm PS256 requires an RSA key, but got ed25519.PrivateKey"),
        (RSA_KEY, "ES256", "ECDSA algorithm ES256 requires an ECDSA key, but got *rsa.PrivateKey"),
        (P384_KEY, "ES256", "ES256 requires a P-256 curve, got P-384"),
        (P256_KEY, "ES512", "ES512 requires a P-521 curve, got P-256"),
        (RSA_KEY, "EdDSA", "EdDSA algorithm requires an Ed25519 key, but got *rsa.PrivateKey"),
        (RSA_KEY, "HS256", "unsupported signature algorithm: HS256"),
        (RSA_KEY, "none", "unsupported signature algorithm: none"),
    ],
)
def test_key_and_algorithm_must_fit(key, algorithm, reason):
    message = error_of(pem(key), jwks_for(key), algorithm=algorithm)
    assert message == f"JWT signing key is incompatible with algorithm {algorithm}: {reason}"


def test_empty_algorithm():
    assert (
        error_of(pem(RSA_KEY), jwks_for(RSA_KEY), algorithm="") == "JWT signing algorithm required"
    )


@pytest.mark.parametrize(
    ("jwks", "message"),
    [
        (b'{"keys": []}', "JWKS doesn't contain any keys"),
        (
            jwks_for(OTHER_RSA_KEY),
            "JWKS doesn't contain a matching public key for the JWT signing key",
        ),
        (
            jwks_for(RSA_KEY, use="enc"),
            "JWKS doesn't contain a matching public key for the JWT signing key",
        ),
        (jwks_for(P256_KEY), "JWKS doesn't contain a matching public key for the JWT signing key"),
    ],
)
def test_jwks_errors(jwks, message):
    assert error_of(pem(RSA_KEY), jwks) == f"failed to verify JWKS: {message}"


@pytest.mark.parametrize(
    "jwks",
    [
        b"not json",
        b"[]",
        b'{"keys": {}}',
        b'{"keys": [{"kty": "nope"}]}',
        b'{"keys": [{"kty": "RSA"}]}',
        b'{"keys": [1]}',
    ],
)
def test_unparsable_jwks(jwks):
    assert error_of(pem(RSA_KEY), jwks).startswith("failed to verify JWKS: failed to parse JWKS: ")


def test_user_key_id_must_name_the_signing_key():
    other = (
        json.loads(jwks_for(OTHER_RSA_KEY, kid="k1"))["keys"]
        + json.loads(jwks_for(RSA_KEY, kid="k2"))["keys"]
    )
    both = json.dumps({"keys": other}).encode()
    assert load(pem(RSA_KEY), both, key_id="k2")[0].kid == "k2"
    assert error_of(pem(RSA_KEY), both, key_id="k3") == (
        'failed to verify JWKS: JWKS doesn\'t contain a key with user-provided key ID "k3"'
    )
    assert error_of(pem(RSA_KEY), both, key_id="k1") == (
        'failed to verify JWKS: JWKS contains a key with user-provided key ID "k1" but the key '
        "content doesn't match the signing key"
    )


def test_single_key_jwks_and_private_members_are_not_published():
    private_jwk = pyjwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY, as_dict=True)
    private_jwk.pop("key_ops")
    material, _ = load(pem(RSA_KEY), json.dumps(private_jwk).encode())
    assert material.jwks == {"keys": [{"kty": "RSA", "n": private_jwk["n"], "e": private_jwk["e"]}]}
    assert material.jwks_json == json.dumps(private_jwk).encode()  # stored bytes are kept


# -- issuance ------------------------------------------------------------------------------------


def decode(token: str, jwks: dict, audience: str) -> dict:
    header = pyjwt.get_unverified_header(token)
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    key = pyjwt.PyJWK(jwk, algorithm=header["alg"])
    options = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}
    return pyjwt.decode(token, key, algorithms=[header["alg"]], audience=audience, options=options)


def test_issue_tokens_claims_and_header():
    material, _ = load(None, None)
    now = 1_700_000_000.7
    combined, per_audience = sentry_jwt.issue_tokens(
        material,
        subject="spiffe://public/ns/default/app",
        audiences=["public", "aud-a", "aud-b", "aud-a"],
        ttl=timedelta(hours=2),
        skew=timedelta(minutes=15),
        issuer="",
        now=now,
    )
    assert pyjwt.get_unverified_header(combined) == {
        "alg": "RS256",
        "kid": material.kid,
        "typ": "JWT",
    }
    claims = pyjwt.decode(combined, options={"verify_signature": False})
    assert claims.keys() == {"aud", "exp", "iat", "jti", "nbf", "sub", "use"}
    assert claims["aud"] == ["public", "aud-a", "aud-b", "aud-a"]
    assert claims["sub"] == "spiffe://public/ns/default/app"
    assert claims["iat"] == 1_700_000_000
    assert claims["nbf"] == 1_700_000_000 - 900
    assert claims["exp"] == 1_700_000_000 + 7200
    assert claims["use"] == "sig"
    assert re.fullmatch(r"[0-9a-f]{32}", claims["jti"])
    assert sorted(per_audience) == ["aud-a", "aud-b", "public"]
    jtis = {claims["jti"]}
    for audience, token in per_audience.items():
        single = decode(token, material.jwks, audience)
        assert single["aud"] == [audience]
        jtis.add(single["jti"])
    assert len(jtis) == 4
    decode(combined, material.jwks, "aud-b")  # verifies with the published JWKS


def test_issuer_claim_only_when_configured():
    material, _ = load(None, None)
    combined, _ = sentry_jwt.issue_tokens(
        material,
        subject="s",
        audiences=["td"],
        ttl=timedelta(hours=1),
        skew=timedelta(0),
        issuer="https://issuer",
    )
    assert pyjwt.decode(combined, options={"verify_signature": False})["iss"] == "https://issuer"


@pytest.mark.parametrize(
    ("key", "algorithm"), [(P256_KEY, "ES256"), (ED_KEY, "EdDSA"), (RSA_KEY, "PS256")]
)
def test_issue_with_other_algorithms_round_trips(key, algorithm):
    material, _ = load(pem(key), jwks_for(key, kid="custom"), key_id="custom", algorithm=algorithm)
    combined, per_audience = sentry_jwt.issue_tokens(
        material,
        subject="s",
        audiences=["td", "x"],
        ttl=timedelta(hours=1),
        skew=timedelta(0),
        issuer="",
    )
    assert pyjwt.get_unverified_header(combined)["alg"] == algorithm
    jwks = {"keys": [{**k, "alg": algorithm} for k in material.jwks["keys"]]}
    assert decode(combined, jwks, "x")["aud"] == ["td", "x"]
    assert decode(per_audience["x"], jwks, "x")["aud"] == ["x"]
