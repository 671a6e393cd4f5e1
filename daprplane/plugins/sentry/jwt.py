"""JWT signing material, and the identity tokens sentry issues next to certificates.

Signing and JWK conversion use PyJWT. Three things are written here because they are Dapr's
rules rather than any library's: the key id (standard, padded base64 of the RFC 7638 SHA-256
thumbprint), the checks stored material must pass, and JSON laid out as Go's ``encoding/json``
writes it (sorted object keys, HTML characters escaped), so that stored and served documents are
byte-identical to Dapr's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.api_jws import PyJWS
from jwt.exceptions import PyJWTError

from daprplane.plugins.sentry.ca import pem

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

_PRIVATE_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
#: Algorithm of generated keys (RSA-2048), whatever ``--jwt-signing-algorithm`` says.
GENERATED_ALGORITHM = "RS256"
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
#: ECDSA algorithms and the curve (Go name, cryptography name) each requires.
EC_ALGORITHMS = {
    "ES256": ("P-256", "secp256r1"),
    "ES384": ("P-384", "secp384r1"),
    "ES512": ("P-521", "secp521r1"),
}
_GO_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
#: JWK members of a private key, dropped from every JWKS sentry publishes.
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth")
#: RFC 7638 required members, per key type.
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}

_JWS = PyJWS()


class JwtMaterialError(Exception):
    """Stored JWT material that cannot be used; fatal at start."""


class JwtIssueError(Exception):
    """A token could not be signed; the message is the one sentry returns (``Internal``)."""


# -- Go-compatible JSON ---------------------------------------------------------------------------


def go_json(value: Any, *, sort_keys: bool = True) -> bytes:
    """``json.Marshal``: compact, map keys sorted, ``<``/``>``/``&``/U+2028/U+2029 escaped.

    ``sort_keys=False`` keeps the mapping's order, as Go does for a struct's fields.
    """
    text = json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys, allow_nan=False
    )
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    try:
        return text.encode()
    except UnicodeEncodeError:  # lone surrogates: Go writes U+FFFD for invalid UTF-8
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def go_quote(text: str) -> str:
    """Close enough to Go's ``%q`` for the names that appear in error messages."""
    return json.dumps(text, ensure_ascii=False)


# -- JWKs -----------------------------------------------------------------------------------------


def public_jwk(key: SigningKey | PublicKey) -> dict[str, str]:
    """The public JWK members (``kty`` and the key parameters) of a key."""
    public = key.public_key() if isinstance(key, _PRIVATE_KEY_TYPES) else key
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    else:
        raise JwtMaterialError(f"unsupported key type {type(key).__name__}")
    return {name: value for name, value in jwk.items() if name != "key_ops"}


def thumbprint_kid(jwk: Mapping[str, Any]) -> str:
    """Dapr's default kid: standard padded base64 of the RFC 7638 SHA-256 thumbprint."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    digest = hashlib.sha256(
        json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    ).digest()
    return base64.b64encode(digest).decode()


def strip_private(jwk: Mapping[str, Any]) -> dict[str, Any]:
    if jwk.get("kty") == "oct":
        return dict(jwk)
    return {name: value for name, value in jwk.items() if name not in _PRIVATE_MEMBERS}


@dataclass(frozen=True)
class Jwk:
    """One parsed key of a JWK set."""

    members: Mapping[str, Any]
    #: The verification key: a cryptography public key, or bytes for ``oct``.
    key: Any

    @property
    def kid(self) -> Any:
        return self.members.get("kid")

    @property
    def alg(self) -> Any:
        return self.members.get("alg")

    @property
    def use(self) -> Any:
        return self.members.get("use")


def _key_family_algorithm(members: Mapping[str, Any]) -> str:
    """An algorithm PyJWT can build this key type with (the JWK's own ``alg`` is not trusted)."""
    kty, crv = members.get("kty"), members.get("crv")
    if kty == "RSA":
        return "RS256"
    if kty == "EC":
        for algorithm, (go_name, _) in EC_ALGORITHMS.items():
            if crv == go_name:
                return algorithm
        raise ValueError(f"unsupported elliptic curve {crv!r}")
    if kty == "OKP":
        if crv in ("Ed25519", "Ed448"):
            return "EdDSA"
        raise ValueError(f"unsupported OKP curve {crv!r}")
    if kty == "oct":
        return "HS256"
    raise ValueError(f"invalid key type from JSON ({kty!r})")


def parse_jwk(members: Any) -> Jwk:
    if not isinstance(members, dict):
        raise ValueError("key must be a JSON object")
    try:
        parsed = PyJWK(members, algorithm=_key_family_algorithm(members))
    except PyJWTError as error:
        raise ValueError(str(error)) from None
    key = parsed.key
    if hasattr(key, "private_bytes"):
        key = key.public_key()
    return Jwk(members, key)


def parse_jwks(data: bytes | str) -> list[Jwk]:
    """jwx ``jwk.Parse``: a ``{"keys": [...]}`` set or a single key; any bad key fails it all."""
    try:
        document = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"failed to unmarshal JSON: {error}") from None
    if not isinstance(document, dict):
        raise ValueError("JWKS must be a JSON object")
    if "keys" not in document:
        return [parse_jwk(document)]
    keys = document["keys"]
    if not isinstance(keys, list):
        raise ValueError('"keys" must be an array')
    parsed = []
    for index, members in enumerate(keys):
        try:
            parsed.append(parse_jwk(members))
        except ValueError as error:
            raise ValueError(f"failed to parse key #{index + 1}: {error}") from None
    return parsed


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid number {name}")


def public_jwks(keys: Sequence[Jwk]) -> dict[str, Any]:
    """The set sentry publishes: every key, without private members."""
    return {"keys": [strip_private(jwk.members) for jwk in keys]}


# -- material -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JwtMaterial:
    """The JWT signing key and the JWKS that publishes it."""

    private_key: SigningKey
    #: The key as PKCS#8 ``PRIVATE KEY`` PEM (the form sentry stores).
    key_pem: bytes
    #: The JWKS as stored (generated: Go ``json.Marshal`` of the set).
    jwks_json: bytes
    #: ``kid`` header of every token.
    kid: str
    algorithm: str
    #: The public JWK set (the OIDC ``jwks.json`` document).
    jwks: dict[str, Any] = field(default_factory=dict)


def _go_type(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "*rsa.PrivateKey"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "*ecdsa.PrivateKey"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519.PrivateKey"
    return type(key).__name__


def check_algorithm(key: SigningKey, algorithm: str) -> None:
    """Dapr's ``validateKeyAlgorithmCompatibility``, with its messages."""
    if algorithm in RSA_ALGORITHMS:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise JwtMaterialError(
                f"RSA algorithm {algorithm} requires an RSA key, but got {_go_type(key)}"
            )
    elif algorithm in EC_ALGORITHMS:
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise JwtMaterialError(
                f"ECDSA algorithm {algorithm} requires an ECDSA key, but got {_go_type(key)}"
            )
        go_name, curve = EC_ALGORITHMS[algorithm]
        if key.curve.name != curve:
            actual = _GO_CURVES.get(key.curve.name, key.curve.name)
            raise JwtMaterialError(f"{algorithm} requires a {go_name} curve, got {actual}")
    elif algorithm == "EdDSA":
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise JwtMaterialError(
                f"EdDSA algorithm requires an Ed25519 key, but got {_go_type(key)}"
            )
    else:
        raise JwtMaterialError(f"unsupported signature algorithm: {algorithm}")


def _keys_match(jwk: Jwk, signing_public: Any) -> bool:
    if isinstance(jwk.use, str) and jwk.use != "sig":
        return False
    if isinstance(jwk.key, bytes):
        return False
    return bool(jwk.key == signing_public)


def verify_jwks(jwks_json: bytes, key: SigningKey, key_id: str | None) -> list[Jwk]:
    """Dapr's ``verifyJWKS``: the set parses, is non-empty, and publishes the signing key."""
    try:
        keys = parse_jwks(jwks_json)
    except ValueError as error:
        raise JwtMaterialError(f"failed to parse JWKS: {error}") from None
    if not keys:
        raise JwtMaterialError("JWKS doesn't contain any keys")
    public = key.public_key()
    if key_id is not None:
        with_id = [jwk for jwk in keys if jwk.kid == key_id]
        if any(_keys_match(jwk, public) for jwk in with_id):
            return keys
        if not with_id:
            raise JwtMaterialError(
                f"JWKS doesn't contain a key with user-provided key ID {go_quote(key_id)}"
            )
        raise JwtMaterialError(
            f"JWKS contains a key with user-provided key ID {go_quote(key_id)} "
            "but the key content doesn't match the signing key"
        )
    if not any(_keys_match(jwk, public) for jwk in keys):
        raise JwtMaterialError("JWKS doesn't contain a matching public key for the JWT signing key")
    return keys


def _decode_key(key_pem: bytes) -> SigningKey:
    try:
        return pem.decode_private_key(key_pem)
    except pem.PemError as error:
        raise JwtMaterialError(
            f"failed to load JWT signing key: failed to decode JWT signing key: {error}"
        ) from None


def generate(*, key_id: str = "") -> JwtMaterial:
    """A new RSA-2048 key and its one-key JWKS (``alg`` RS256, ``use`` sig)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = public_jwk(key)
    kid = key_id or thumbprint_kid(jwk)
    document = {"keys": [{**jwk, "kid": kid, "alg": GENERATED_ALGORITHM, "use": "sig"}]}
    return JwtMaterial(
        private_key=key,
        key_pem=pem.encode_private_key(key),
        jwks_json=go_json(document),
        kid=kid,
        algorithm=GENERATED_ALGORITHM,
        jwks=document,
    )


def load_jwt_material(
    key_pem: bytes | None,
    jwks_json: bytes | None,
    *,
    enabled: bool,
    key_id: str,
    algorithm: str,
) -> tuple[JwtMaterial | None, bool]:
    """The JWT material to use and whether it was generated (so the caller persists it).

    Stored material counts only when both the key and the JWKS are present; a present key must
    decode even without a JWKS, and a present pair is verified even with JWT disabled. With JWT
    enabled and nothing usable stored, an RSA-2048 key is generated and the algorithm becomes
    RS256. Raises :class:`JwtMaterialError` with Dapr's messages.
    """
    key = _decode_key(key_pem) if key_pem is not None else None
    if key is not None and jwks_json is not None:
        try:
            keys = verify_jwks(jwks_json, key, key_id or None)
        except JwtMaterialError as error:
            raise JwtMaterialError(f"failed to verify JWKS: {error}") from None
        if enabled:
            if not algorithm:
                raise JwtMaterialError("JWT signing algorithm required")
            try:
                check_algorithm(key, algorithm)
            except JwtMaterialError as error:
                raise JwtMaterialError(
                    f"JWT signing key is incompatible with algorithm {algorithm}: {error}"
                ) from None
        material = JwtMaterial(
            private_key=key,
            key_pem=pem.encode_private_key(key),
            jwks_json=jwks_json,
            kid=key_id or thumbprint_kid(public_jwk(key)),
            algorithm=algorithm,
            jwks=public_jwks(keys),
        )
        return material, False
    if not enabled:
        return None, False
    # Dapr writes the thumbprint into a generated JWKS even when --jwt-key-id is set, so its
    # tokens then name a kid the JWKS lacks; the JWKS written here carries the kid tokens use.
    return generate(key_id=key_id), True


# -- issuance -------------------------------------------------------------------------------------


def sign(material: JwtMaterial, claims: Mapping[str, Any]) -> str:
    """A compact JWS of ``claims`` with header ``alg``, ``kid`` and ``typ: JWT``."""
    return _JWS.encode(
        go_json(dict(claims)),
        material.private_key,
        algorithm=material.algorithm,
        headers={"kid": material.kid, "typ": "JWT"},
    )


def issue_tokens(
    material: JwtMaterial,
    *,
    subject: str,
    audiences: Sequence[str],
    ttl: timedelta,
    skew: timedelta,
    issuer: str,
    now: float | None = None,
) -> tuple[str, dict[str, str]]:
    """The ``jwt`` (every audience) and ``per_audience_jwts`` (one token per audience).

    ``audiences`` is ``[<trust domain>] + requested``, duplicates kept. Raises
    :class:`JwtIssueError` with the message sentry returns.
    """
    moment = time.time() if now is None else now
    base: dict[str, Any] = {
        "sub": subject,
        "iat": math.floor(moment),
        "nbf": math.floor(moment - skew.total_seconds()),
        "exp": math.floor(moment + ttl.total_seconds()),
        "use": "sig",
    }
    if issuer:
        base["iss"] = issuer

    def token(aud: list[str]) -> str:
        return sign(material, {**base, "aud": aud, "jti": secrets.token_hex(16)})

    try:
        combined = token(list(audiences))
    except (PyJWTError, ValueError, TypeError) as error:
        raise JwtIssueError(f"failed to generate JWT: {error}") from None
    per_audience: dict[str, str] = {}
    for audience in audiences:
        if audience in per_audience:
            continue
        try:
            per_audience[audience] = token([audience])
        except (PyJWTError, ValueError, TypeError) as error:
            raise JwtIssueError(
                f"failed to generate JWT for audience {audience}: {error}"
            ) from None
    return combined, per_audience
