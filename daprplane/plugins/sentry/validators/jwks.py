"""The JWKS validator: the token is a JWT signed by a key of a configured JWK set.

The set comes from ``source``: an ``http(s)://`` URL (fetched, then refreshed), a file (re-read
when it changes), or the JSON itself, optionally base64-encoded. The token must carry a ``kid``
naming a key of the set, ``aud`` must contain sentry's SPIFFE ID and ``sub`` must be the
requester's SPIFFE ID; times are checked with 5 minutes of skew. Claim errors read as jwx's, the
library Dapr uses, because clients and tests match on them.

Signature checks use PyJWT; key selection and the claim rules are jwx's and written here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import os
import re
import ssl
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from jwt.api_jws import PyJWS
from jwt.exceptions import PyJWTError

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.core import goduration
from daprplane.core.background import cancel_and_wait
from daprplane.core.security import spiffe
from daprplane.plugins.sentry.jwt import EC_ALGORITHMS, RSA_ALGORITHMS, Jwk, parse_jwks
from daprplane.plugins.sentry.validators import ValidatorSetupError, common
from daprplane.plugins.sentry.validators.base import TokenValidator, Validation, ValidationError

if TYPE_CHECKING:  # aiohttp loads only for a JWKS served over HTTP(S)
    import aiohttp

SOURCE_ERROR = (
    "failed to parse property 'location': not a URL, path to local file, or JSON value "
    "(optionally base64-encoded)"
)
HEALTHZ_TARGET = "sentry-jwks-validator"
ACCEPTABLE_SKEW = 300
DEFAULT_MIN_REFRESH = timedelta(minutes=10)
DEFAULT_REQUEST_TIMEOUT = timedelta(seconds=30)
#: Refresh interval of a URL source whose responses carry no ``Cache-Control: max-age``.
DEFAULT_REFRESH = timedelta(minutes=15)
MAX_DOCUMENT_BYTES = 4 << 20
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


class JwksSetupError(ValidatorSetupError):
    """Options or a source the validator cannot use; fatal at start."""


class TokenError(Exception):
    """Why a token was rejected, worded as jwx words it."""


# -- options --------------------------------------------------------------------------------------


def _option(options: Mapping[str, Any], name: str) -> Any:
    """mapstructure matches option names case-insensitively."""
    for key, value in options.items():
        if str(key).lower() == name.lower():
            return value
    return None


def _duration(options: Mapping[str, Any], name: str) -> timedelta:
    """A Go duration (``10m``) or a number of seconds; empty or absent is zero."""
    value = _option(options, name)
    if value is None or value == "":
        return timedelta(0)
    if isinstance(value, bool):
        raise JwksSetupError(f"error decoding '{name}': invalid duration {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return timedelta(seconds=int(text))
    try:
        return goduration.parse(text)
    except goduration.DurationError as error:
        raise JwksSetupError(f"error decoding '{name}': {error}") from None


def _inline_document(source: str) -> bytes:
    """The inline JWKS: base64 (std or raw, padding ignored) if it decodes, else the text."""
    trimmed = re.sub(r"[\r\n]", "", source).rstrip("=")
    try:
        return base64.b64decode(trimmed + "=" * (-len(trimmed) % 4), validate=True)
    except (binascii.Error, ValueError):
        return source.encode("utf-8", "surrogateescape")


def _ca_context(ca_certificate: str) -> ssl.SSLContext:
    """TLS client context trusting only ``caCertificate`` (PEM text or a file), or the system."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not ca_certificate:
        return context
    pem = ca_certificate
    if "-----BEGIN" not in ca_certificate and os.path.isfile(ca_certificate):
        with open(ca_certificate, encoding="utf-8", errors="replace") as file:
            pem = file.read()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError) as error:
        raise JwksSetupError(f"failed to add root certificate to certpool: {error}") from None
    return context


# -- token checks ---------------------------------------------------------------------------------


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _algorithms_for(jwk: Jwk) -> Sequence[str]:
    """The algorithms a key verifies: its ``alg``, else every one its type allows."""
    if isinstance(jwk.alg, str) and jwk.alg:
        return (jwk.alg,)
    kty = jwk.members.get("kty")
    if kty == "RSA":
        return tuple(sorted(RSA_ALGORITHMS))
    if kty == "EC":
        crv = jwk.members.get("crv")
        return tuple(alg for alg, (name, _) in EC_ALGORITHMS.items() if name == crv)
    if kty == "OKP":
        return ("EdDSA",)
    if kty == "oct":
        return ("HS256", "HS384", "HS512")
    return ()


def verify_signature(token: str, keys: Sequence[Jwk]) -> bytes:
    """The payload of a compact JWS signed by the key its ``kid`` names."""
    segments = token.split(".")
    if len(segments) != 3:
        raise TokenError("failed to parse jws: invalid number of segments")
    try:
        header = json.loads(_b64url(segments[0]))
    except (ValueError, binascii.Error, RecursionError):
        raise TokenError("failed to parse jws: failed to decode protected headers") from None
    if not isinstance(header, dict):
        raise TokenError("failed to parse jws: failed to decode protected headers")
    kid, alg = header.get("kid"), header.get("alg")
    if isinstance(kid, str) and kid and isinstance(alg, str):
        for jwk in keys:
            if jwk.kid != kid or alg not in _algorithms_for(jwk):
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    decoded = PyJWS().decode_complete(token, key=jwk.key, algorithms=[alg])
            except (PyJWTError, ValueError, TypeError):
                continue
            payload: bytes = decoded["payload"]
            return payload
    raise TokenError("could not verify message using any of the signatures or keys")


def _numeric_date(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(f"failed to parse token: invalid value for {name} key")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TokenError(f"failed to parse token: invalid value for {name} key")
        return math.floor(value)
    return value


def _parse_claims(payload: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise TokenError("failed to parse token: payload is not valid JSON") from None
    if not isinstance(claims, dict):
        raise TokenError("failed to parse token: payload is not a JSON object")
    for name in ("sub", "iss", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise TokenError(f"failed to parse token: invalid value for {name} key")
    aud = claims.get("aud")
    if isinstance(aud, str):
        claims["aud"] = [aud]
    elif aud is not None and not (isinstance(aud, list) and all(isinstance(a, str) for a in aud)):
        raise TokenError("failed to parse token: invalid value for aud key")
    return claims


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid number {name}")


def check_claims(
    claims: Mapping[str, Any],
    *,
    audience: str,
    subject: str,
    now: float,
    skew: int = ACCEPTABLE_SKEW,
) -> None:
    """jwx ``jwt.Validate`` order and rules: iat, exp, nbf (whole seconds), then aud, then sub."""
    current = math.floor(now)
    iat = _numeric_date(claims, "iat")
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    if iat is not None and current < iat - skew:
        raise TokenError('"iat" not satisfied')
    if exp is not None and current >= exp + skew:
        raise TokenError('"exp" not satisfied')
    if nbf is not None and current != nbf and current <= nbf - skew:
        raise TokenError('"nbf" not satisfied')
    if audience not in (claims.get("aud") or ()):
        raise TokenError('"aud" not satisfied')
    if "sub" not in claims:
        raise TokenError('"sub" not satisfied: claim "sub" does not exist')
    if claims["sub"] != subject:
        raise TokenError('"sub" not satisfied: values do not match')


def verify_token(
    token: str, keys: Sequence[Jwk], *, audience: str, subject: str, now: float | None = None
) -> dict[str, Any]:
    """The claims of a valid token; :class:`TokenError` otherwise."""
    claims = _parse_claims(verify_signature(token, keys))
    check_claims(
        claims, audience=audience, subject=subject, now=time.time() if now is None else now
    )
    return claims


# -- the validator --------------------------------------------------------------------------------


class JwksValidator:
    kind = TokenValidator.JWKS
    healthz_target: str | None = HEALTHZ_TARGET

    def __init__(
        self,
        options: Mapping[str, Any],
        sentry_id: str,
        *,
        logger: logging.Logger | None = None,
        file_poll_interval: float = 1.0,
    ) -> None:
        self._log = logger or logging.getLogger("dapr.sentry.identity.jwks")
        self._sentry_id = sentry_id
        self._source = str(_option(options, "source") or "")
        self._ca_certificate = str(_option(options, "caCertificate") or "")
        min_refresh = _duration(options, "minRefreshInterval")
        timeout = _duration(options, "requestTimeout")
        self.min_refresh = (
            min_refresh if min_refresh > timedelta(seconds=1) else DEFAULT_MIN_REFRESH
        )
        self.request_timeout = (
            timeout if timeout > timedelta(milliseconds=1) else DEFAULT_REQUEST_TIMEOUT
        )
        self._file_poll_interval = file_poll_interval
        self._keys: list[Jwk] | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def keys(self) -> list[Jwk] | None:
        return self._keys

    async def start(self) -> None:
        source = self._source
        if source.startswith(("https://", "http://")):
            import aiohttp

            context = _ca_context(self._ca_certificate)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context),
                timeout=aiohttp.ClientTimeout(total=self.request_timeout.total_seconds()),
            )
            try:
                self._keys, max_age = await self._fetch(source)
            except JwksSetupError:
                await self.stop()
                raise
            self._task = asyncio.create_task(self._refresh_url(source, max_age))
        elif os.path.isfile(source):
            stamp = _file_stamp(source)  # before reading, so no change can slip between
            self._keys = self._read_file(source)
            self._task = asyncio.create_task(self._watch_file(source, stamp))
        else:
            try:
                self._keys = parse_jwks(_inline_document(source))
            except ValueError:
                raise JwksSetupError(SOURCE_ERROR) from None

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def validate(self, request: sentry_pb2.SignCertificateRequest) -> Validation:
        if not request.token:
            raise ValidationError("the request does not contain a token")
        keys = self._keys
        if keys is None:
            raise ValidationError("jwks validator not ready")
        trust_domain = common.validate(request)
        try:
            subject = str(spiffe.SpiffeId.for_app(trust_domain, request.namespace, request.id))
        except spiffe.SpiffeIdError as error:
            raise ValidationError(f"failed to construct SPIFFE ID for requestor: {error}") from None
        try:
            verify_token(request.token, keys, audience=self._sentry_id, subject=subject)
        except TokenError as error:
            raise ValidationError(f"token validation failed: {error}") from None
        except Exception as error:  # hostile input must never escape as anything else
            self._log.debug("Unexpected error while validating a token: %r", error)
            raise ValidationError(
                f"token validation failed: failed to parse token: {error}"
            ) from None
        return Validation(trust_domain=trust_domain)

    # -- sources ----------------------------------------------------------------------------------

    async def _fetch(self, url: str) -> tuple[list[Jwk], float | None]:
        import aiohttp

        assert self._session is not None
        try:
            async with self._session.get(url, headers={"Accept": "application/json"}) as response:
                if response.status != 200:
                    raise JwksSetupError(
                        f"failed to fetch JWKS from {url}: HTTP status {response.status}"
                    )
                body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
                cache_control = response.headers.get("Cache-Control", "")
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError) as error:
            raise JwksSetupError(
                f"failed to fetch JWKS from {url}: {error or type(error).__name__}"
            ) from None
        if len(body) > MAX_DOCUMENT_BYTES:
            raise JwksSetupError(f"failed to fetch JWKS from {url}: document too large")
        try:
            keys = parse_jwks(body)
        except ValueError as error:
            raise JwksSetupError(f"failed to parse JWKS from {url}: {error}") from None
        match = _MAX_AGE.search(cache_control)
        return keys, float(match.group(1)) if match else None

    def _refresh_delay(self, max_age: float | None) -> float:
        wanted = DEFAULT_REFRESH.total_seconds() if max_age is None else max_age
        return max(wanted, self.min_refresh.total_seconds())

    async def _refresh_url(self, url: str, max_age: float | None) -> None:
        while True:
            await asyncio.sleep(self._refresh_delay(max_age))
            try:
                self._keys, max_age = await self._fetch(url)
            except JwksSetupError as error:
                self._log.warning("Failed to refresh JWKS; keeping the previous keys: %s", error)

    def _read_file(self, path: str) -> list[Jwk]:
        try:
            with open(path, "rb") as file:
                return parse_jwks(file.read())
        except (OSError, ValueError) as error:
            raise JwksSetupError(f"failed to load JWKS from file '{path}': {error}") from None

    async def _watch_file(self, path: str, last: tuple[int, int, int] | None) -> None:
        while True:
            await asyncio.sleep(self._file_poll_interval)
            current = _file_stamp(path)
            if current == last or current is None:
                continue
            last = current
            try:
                self._keys = self._read_file(path)
                self._log.info("Reloaded JWKS from %s", path)
            except JwksSetupError as error:
                self._log.warning("Keeping the previous JWKS: %s", error)


def _file_stamp(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def create(options: Mapping[str, Any], environment: Any) -> JwksValidator:
    """The factory ``validators.build`` calls."""
    return JwksValidator(options, environment.sentry_id, logger=environment.logger)
