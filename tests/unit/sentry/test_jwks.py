"""The JWKS token validator: sources, options, token rules and messages."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
from datetime import timedelta

import jwt as pyjwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.plugins.sentry import jwt as sentry_jwt
from daprplane.plugins.sentry.validators.base import TokenValidator, ValidationError
from daprplane.plugins.sentry.validators.jwks import (
    SOURCE_ERROR,
    JwksSetupError,
    JwksValidator,
    TokenError,
    verify_token,
)
from tests.pki import TlsCA

SENTRY_ID = "spiffe://localhost/ns/default/dapr-sentry"
SUBJECT = "spiffe://public/ns/default/myapp"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def jwk(key, kid, **extra):
    return {**sentry_jwt.public_jwk(key), "kid": kid, **extra}


JWKS = {
    "keys": [
        jwk(RSA_KEY, "rsa", alg="RS256"),
        jwk(EC_KEY, "ec"),
        jwk(ED_KEY, "ed"),
        jwk(OTHER_KEY, "noalg"),
    ]
}
KEYS = sentry_jwt.parse_jwks(json.dumps(JWKS))


def token(claims=None, *, key=RSA_KEY, kid="rsa", alg="RS256", now=None, drop=(), **overrides):
    now = int(time.time()) if now is None else now
    body = {
        "sub": SUBJECT,
        "aud": [SENTRY_ID],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        **(claims or {}),
    }
    body.update(overrides)
    for name in drop:
        body.pop(name)
    headers = {"kid": kid} if kid is not None else {}
    return pyjwt.encode(body, key, algorithm=alg, headers=headers)


def request(tok="", *, id="myapp", namespace="default", trust_domain="", csr=b"csr"):
    return sentry_pb2.SignCertificateRequest(
        id=id,
        token=tok,
        namespace=namespace,
        trust_domain=trust_domain,
        certificate_signing_request=csr,
        token_validator=TokenValidator.JWKS,
    )


def reason(tok, **kwargs) -> str:
    with pytest.raises(TokenError) as caught:
        verify_token(tok, KEYS, audience=SENTRY_ID, subject=SUBJECT, **kwargs)
    return str(caught.value)


# -- token rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "kid", "alg"),
    [
        (RSA_KEY, "rsa", "RS256"),
        (EC_KEY, "ec", "ES256"),
        (ED_KEY, "ed", "EdDSA"),
        (OTHER_KEY, "noalg", "PS384"),
    ],
)
def test_valid_tokens(key, kid, alg):
    claims = verify_token(
        token(key=key, kid=kid, alg=alg), KEYS, audience=SENTRY_ID, subject=SUBJECT
    )
    assert claims["sub"] == SUBJECT


def test_audience_may_be_a_string_and_contain_others():
    verify_token(token(aud=SENTRY_ID), KEYS, audience=SENTRY_ID, subject=SUBJECT)
    verify_token(token(aud=["x", SENTRY_ID]), KEYS, audience=SENTRY_ID, subject=SUBJECT)


def test_sentry_issued_tokens_verify_with_its_jwks():
    material, _ = sentry_jwt.load_jwt_material(
        None, None, enabled=True, key_id="", algorithm="RS256"
    )
    combined, _ = sentry_jwt.issue_tokens(
        material,
        subject=SUBJECT,
        audiences=["public", SENTRY_ID],
        ttl=timedelta(hours=1),
        skew=timedelta(minutes=15),
        issuer="",
    )
    keys = sentry_jwt.parse_jwks(material.jwks_json)
    verify_token(combined, keys, audience=SENTRY_ID, subject=SUBJECT)


SIGNATURE = "could not verify message using any of the signatures or keys"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: token(aud=["other"]), '"aud" not satisfied'),
        (lambda: token(drop=["aud"]), '"aud" not satisfied'),
        (
            lambda: token(sub="spiffe://public/ns/default/other"),
            '"sub" not satisfied: values do not match',
        ),
        (lambda: token(drop=["sub"]), '"sub" not satisfied: claim "sub" does not exist'),
        (lambda: token(exp=int(time.time()) - 301), '"exp" not satisfied'),
        (lambda: token(nbf=int(time.time()) + 400), '"nbf" not satisfied'),
        (lambda: token(iat=int(time.time()) + 400), '"iat" not satisfied'),
        (lambda: token(kid=None), SIGNATURE),
        (lambda: token(kid="unknown"), SIGNATURE),
        (lambda: token(kid=""), SIGNATURE),
        (lambda: token(key=OTHER_KEY, kid="rsa"), SIGNATURE),
        (lambda: token(kid="rsa", alg="PS256"), SIGNATURE),  # the key's alg is RS256
        (lambda: token(key=EC_KEY, kid="rsa", alg="ES256"), SIGNATURE),
        (lambda: token(key=b"secret-secret-secret-secret-1234", kid="rsa", alg="HS256"), SIGNATURE),
        (lambda: token()[:-4] + "AAAA", SIGNATURE),
        (lambda: "a.b", "failed to parse jws: invalid number of segments"),
        (lambda: "!!.e30.sig", "failed to parse jws: failed to decode protected headers"),
        (lambda: token(exp="soon"), "failed to parse token: invalid value for exp key"),
        (lambda: token(aud=[1]), "failed to parse token: invalid value for aud key"),
    ],
)
def test_rejections(make, message):
    assert reason(make()) == message


def test_none_algorithm_is_refused():
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"rsa"}').rstrip(b"=").decode()
    payload = (
        base64.urlsafe_b64encode(json.dumps({"sub": SUBJECT, "aud": SENTRY_ID}).encode())
        .rstrip(b"=")
        .decode()
    )
    assert reason(f"{header}.{payload}.") == SIGNATURE


def test_time_checks_allow_five_minutes_of_skew():
    now = 1_800_000_000
    check = lambda tok: verify_token(tok, KEYS, audience=SENTRY_ID, subject=SUBJECT, now=now + 0.9)  # noqa: E731
    check(token(now=now, exp=now - 299, nbf=now + 299, iat=now + 300))
    with pytest.raises(TokenError, match='"exp" not satisfied'):
        check(token(now=now, exp=now - 300))
    with pytest.raises(TokenError, match='"nbf" not satisfied'):
        check(token(now=now, nbf=now + 300))
    with pytest.raises(TokenError, match='"iat" not satisfied'):
        check(token(now=now, iat=now + 301))
    check(token(now=now, drop=["exp", "nbf", "iat"]))  # jwx requires none of them


def test_claim_order_matches_jwx():
    # iat, exp, nbf come before aud, and aud before sub.
    tok = token(exp=int(time.time()) - 1000, aud=["x"], sub="y")
    assert reason(tok) == '"exp" not satisfied'
    assert reason(token(aud=["x"], sub="y")) == '"aud" not satisfied'


# -- the validator -------------------------------------------------------------------------------


async def started(source, **options) -> JwksValidator:
    validator = JwksValidator({"source": source, **options}, SENTRY_ID)
    await validator.start()
    return validator


async def test_validate_request_messages():
    validator = JwksValidator({"source": json.dumps(JWKS)}, SENTRY_ID)
    assert validator.kind == TokenValidator.JWKS
    assert validator.healthz_target == "sentry-jwks-validator"
    with pytest.raises(ValidationError, match=r"^the request does not contain a token$"):
        await validator.validate(request(""))
    with pytest.raises(ValidationError, match=r"^jwks validator not ready$"):
        await validator.validate(request(token()))
    await validator.start()
    try:
        assert (await validator.validate(request(token()))).trust_domain == "public"
        with pytest.raises(ValidationError) as caught:
            await validator.validate(request(token(), id=""))
        assert str(caught.value).startswith("invalid request: ")
        with pytest.raises(ValidationError) as caught:
            await validator.validate(request(token(), namespace="bad/ns"))
        assert str(caught.value).startswith("failed to construct SPIFFE ID for requestor: ")
        with pytest.raises(
            ValidationError, match=r'^token validation failed: "aud" not satisfied$'
        ):
            await validator.validate(request(token(aud=["x"])))
        # The trust domain comes from the request, and so does the expected subject.
        sub = "spiffe://example.org/ns/default/myapp"
        result = await validator.validate(request(token(sub=sub), trust_domain="example.org"))
        assert result.trust_domain == "example.org"
        with pytest.raises(ValidationError, match='"sub" not satisfied'):
            await validator.validate(request(token(), trust_domain="example.org"))
    finally:
        await validator.stop()


@pytest.mark.parametrize(
    "encode",
    [
        lambda doc: doc,
        lambda doc: base64.b64encode(doc.encode()).decode(),
        lambda doc: base64.b64encode(doc.encode()).decode().rstrip("="),
        lambda doc: json.dumps(JWKS["keys"][0]),  # a single key is a set of one
    ],
)
async def test_inline_sources(encode):
    validator = await started(encode(json.dumps(JWKS)))
    assert (await validator.validate(request(token()))).trust_domain == "public"
    await validator.stop()


@pytest.mark.parametrize(
    "source", ["", "not json", "e30K!", "/no/such/file", '{"keys": [{"kty": "x"}]}', "Zm9v"]
)
async def test_unusable_inline_source(source):
    with pytest.raises(JwksSetupError) as caught:
        await started(source)
    assert str(caught.value) == SOURCE_ERROR


async def test_file_source_is_reloaded(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(OTHER_KEY, "old", alg="RS256")]}))
    validator = JwksValidator({"source": str(path)}, SENTRY_ID, file_poll_interval=0.05)
    await validator.start()
    try:
        with pytest.raises(ValidationError, match=SIGNATURE):
            await validator.validate(request(token()))
        path.write_text(json.dumps(JWKS))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if len(validator.keys or ()) == len(JWKS["keys"]):
                break
        await validator.validate(request(token()))
        path.write_text("broken")  # a bad edit keeps the keys that work
        await asyncio.sleep(0.3)
        await validator.validate(request(token()))
    finally:
        await validator.stop()


async def test_bad_file_source_fails_start(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text("nope")
    with pytest.raises(JwksSetupError, match="failed to load JWKS from file"):
        await started(str(path))


@pytest.mark.parametrize(
    ("options", "min_refresh", "timeout"),
    [
        ({}, timedelta(minutes=10), timedelta(seconds=30)),
        (
            {"minRefreshInterval": "1s", "requestTimeout": "1ms"},
            timedelta(minutes=10),
            timedelta(seconds=30),
        ),
        (
            {"minRefreshInterval": "2s", "requestTimeout": "2ms"},
            timedelta(seconds=2),
            timedelta(milliseconds=2),
        ),
        (
            {"MINREFRESHINTERVAL": "90", "requesttimeout": 5},
            timedelta(seconds=90),
            timedelta(seconds=5),
        ),
        ({"minRefreshInterval": "1h30m"}, timedelta(minutes=90), timedelta(seconds=30)),
    ],
)
def test_duration_options(options, min_refresh, timeout):
    validator = JwksValidator({"source": "{}", **options}, SENTRY_ID)
    assert (validator.min_refresh, validator.request_timeout) == (min_refresh, timeout)


def test_bad_duration_option():
    with pytest.raises(JwksSetupError, match="error decoding 'requestTimeout'"):
        JwksValidator({"source": "{}", "requestTimeout": "soon"}, SENTRY_ID)


def test_create_factory():
    from types import SimpleNamespace

    from daprplane.plugins.sentry.validators import jwks

    environment = SimpleNamespace(sentry_id=SENTRY_ID, logger=None)
    assert isinstance(jwks.create({"source": "{}"}, environment), JwksValidator)


# -- HTTPS source --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory):
    ca = TlsCA("test CA")
    directory = tmp_path_factory.mktemp("tls")
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    ca.server_cert(("localhost", "127.0.0.1")).write(directory, "tls")
    return directory


class JwksServer:
    def __init__(self, document, *, tls_dir=None, cache_control=""):
        self.document = document
        self.status = 200
        self.cache_control = cache_control
        self.hits = 0
        self.tls_dir = tls_dir

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
        return web.Response(status=self.status, text=json.dumps(self.document), headers=headers)

    async def __aenter__(self):
        app = web.Application()
        app.router.add_get("/jwks.json", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        context = None
        if self.tls_dir is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls_dir / "tls.crt", self.tls_dir / "tls.key")
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"{'https' if context else 'http'}://127.0.0.1:{port}/jwks.json"
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


@pytest.mark.parametrize("ca_as", ["pem", "file"])
async def test_https_source_with_custom_ca(test_ca, ca_as):
    ca = (test_ca / "ca.crt").read_text() if ca_as == "pem" else str(test_ca / "ca.crt")
    async with JwksServer(JWKS, tls_dir=test_ca) as server:
        validator = await started(server.url, caCertificate=ca)
        try:
            assert (await validator.validate(request(token()))).trust_domain == "public"
        finally:
            await validator.stop()


async def test_https_source_needs_the_ca(test_ca):
    async with JwksServer(JWKS, tls_dir=test_ca) as server:
        with pytest.raises(JwksSetupError, match="failed to fetch JWKS from"):
            await started(server.url)


async def test_bad_ca_certificate(test_ca):
    async with JwksServer(JWKS, tls_dir=test_ca) as server:
        with pytest.raises(JwksSetupError, match="failed to add root certificate to certpool"):
            await started(
                server.url,
                caCertificate="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
            )


async def test_failed_initial_fetch_fails_start():
    async with JwksServer(JWKS) as server:
        server.status = 500
        with pytest.raises(JwksSetupError, match="HTTP status 500"):
            await started(server.url)
        server.status = 200
        server.document = ["not a set"]
        with pytest.raises(JwksSetupError, match="failed to parse JWKS from"):
            await started(server.url)
    with pytest.raises(JwksSetupError, match="failed to fetch JWKS from"):
        await started(server.url, requestTimeout="2s")  # nothing listens any more


async def test_http_source_is_refreshed():
    first = {"keys": [jwk(OTHER_KEY, "old", alg="RS256")]}
    async with JwksServer(first, cache_control="public, max-age=0") as server:
        validator = await started(server.url, minRefreshInterval="2s")
        try:
            with pytest.raises(ValidationError, match=SIGNATURE):
                await validator.validate(request(token()))
            server.document = JWKS
            for _ in range(60):
                await asyncio.sleep(0.1)
                if server.hits >= 2:
                    break
            await asyncio.sleep(0.1)
            await validator.validate(request(token()))
            server.status = 503  # a failed refresh keeps the keys
            await asyncio.sleep(2.3)
            assert server.hits >= 3
            await validator.validate(request(token()))
        finally:
            await validator.stop()


# -- fuzzing -------------------------------------------------------------------------------------

_VALIDATOR = JwksValidator({"source": json.dumps(JWKS)}, SENTRY_ID)
asyncio.run(_VALIDATOR.start())


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
_claims = st.fixed_dictionaries(
    {},
    optional={
        name: st.one_of(_json_values, st.just(SENTRY_ID), st.just(SUBJECT), st.integers(0, 2**40))
        for name in ("aud", "sub", "exp", "nbf", "iat", "iss", "jti")
    },
)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(st.text(st.characters(codec="ascii"), max_size=40), min_size=1, max_size=5).map(
            ".".join
        ),
        st.tuples(_json_values, _json_values, st.binary(max_size=64)).map(
            lambda parts: (
                ".".join(_segment(json.dumps(p).encode()) for p in parts[:2])
                + "."
                + _segment(parts[2])
            )
        ),
    )
)
def test_fuzz_token_strings_only_raise_validation_errors(tok):
    with contextlib.suppress(ValidationError):
        asyncio.run(_VALIDATOR.validate(request(tok)))


@settings(max_examples=150, deadline=None)
@given(claims=_claims, kid=st.sampled_from(["rsa", "ec", "ed", "noalg", "zzz"]))
def test_fuzz_signed_claims_only_raise_validation_errors(claims, kid):
    key, alg = {"rsa": (RSA_KEY, "RS256"), "ec": (EC_KEY, "ES256"), "ed": (ED_KEY, "EdDSA")}.get(
        kid, (OTHER_KEY, "RS512")
    )
    header = _segment(json.dumps({"alg": alg, "kid": kid}).encode())
    payload = _segment(json.dumps(claims).encode())
    signature = pyjwt.get_algorithm_by_name(alg).sign(f"{header}.{payload}".encode(), key)
    tok = f"{header}.{payload}.{_segment(signature)}"
    try:
        result = asyncio.run(_VALIDATOR.validate(request(tok)))
    except ValidationError as error:
        assert str(error).startswith("token validation failed: ")
    else:
        assert result.trust_domain == "public"
        assert claims.get("sub") == SUBJECT
