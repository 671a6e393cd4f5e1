"""The OIDC discovery server: ``<prefix>/.well-known/openid-configuration``, ``<prefix>/jwks.json``.

Cloud providers federate with sentry's JWTs through these two documents. Routing copies Go's
``ServeMux`` (exact paths, unclean paths redirected, ``404 page not found``), and the issuer and
``jwks_uri`` derivation copies Dapr's, including its rule that ``X-Forwarded-Host`` only names
the issuer when an allow-list (other than ``*``) decides which hosts may ask (CWE-346).

Go's ``url.Parse`` would read ``/``, ``?``, ``#`` and ``@`` in a Host header as other parts of
the URL and put them into the issuer; such hosts get ``400 Invalid host`` here instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from aiohttp import web

from daprplane.core import aioserver
from daprplane.plugins.sentry.jwt import go_json

log = logging.getLogger("dapr.sentry.server.oidc.http")

JWKS_ENDPOINT = "/jwks.json"
DISCOVERY_ENDPOINT = "/.well-known/openid-configuration"
HEALTHZ_TARGET = "oidc-server"
CLAIMS_SUPPORTED = ("sub", "iss", "aud", "exp", "iat", "nbf", "use")

#: ASCII bytes Go's ``url.Parse`` accepts unescaped in a host (``shouldEscape`` in host mode).
_HOST_BYTES = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!$&'()*+,;=:[]<>\""
)
_PORT = re.compile(r":[0-9]*")
_HEX = frozenset(b"0123456789abcdefABCDEF")


class OidcServerError(Exception):
    """The OIDC server cannot start (TLS material, listen address); fatal."""


# -- Go net/http and net/url behaviour ------------------------------------------------------------


def clean_path(path: str) -> str:
    """``ServeMux``'s ``cleanPath``: ``path.Clean`` with a leading ``/``, trailing ``/`` kept."""
    if not path:
        return "/"
    if not path.startswith("/"):
        path = "/" + path
    parts: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if parts:
                parts.pop()
            continue
        parts.append(segment)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def split_host_port(hostport: str) -> tuple[str, str] | None:
    """``net.SplitHostPort``; ``None`` where Go returns an error."""
    colon = hostport.rfind(":")
    if colon < 0:
        return None
    start, port_start = 0, 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return None
        if end + 1 != colon:
            return None
        host = hostport[1:end]
        start, port_start = 1, end + 1
    else:
        host = hostport[:colon]
        if ":" in host:
            return None
    if "[" in hostport[start:] or "]" in hostport[port_start:]:
        return None
    return host, hostport[colon + 1 :]


def url_host(host: str) -> str | None:
    """The host as ``url.Parse("scheme://" + host).String()`` prints it; ``None`` if invalid."""
    if any(c in host for c in "/?#@") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in host):
        return None
    if host.startswith("["):
        close = host.rfind("]")
        if close < 0:
            return None
        port = host[close + 1 :]
    else:
        colon = host.rfind(":")
        port = host[colon:] if colon >= 0 else ""
    if port and not _PORT.fullmatch(port):
        return None
    data = host.encode("utf-8", "surrogateescape")
    raw = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0x25:  # "%": only non-ASCII bytes and "%25" may be escaped in a host
            pair = data[i + 1 : i + 3]
            if len(pair) < 2 or not all(c in _HEX for c in pair):
                return None
            value = int(pair, 16)
            if value < 0x80 and pair != b"25":
                return None
            raw.append(value)
            i += 3
            continue
        if byte < 0x80 and byte not in _HOST_BYTES:
            return None
        raw.append(byte)
        i += 1
    return "".join(chr(b) if b in _HOST_BYTES else f"%{b:02X}" for b in raw)


def _go_url(text: str, what: str) -> str:
    """``url.Parse(text).String()`` for the configured issuer and JWKS URI."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError(f"invalid {what}: net/url: invalid control character in URL")
    try:
        return urlunsplit(urlsplit(text))
    except ValueError as error:
        raise ValueError(f"invalid {what}: {error}") from None


def _text_error(status: int, message: str) -> web.Response:
    """Go's ``http.Error``."""
    return web.Response(
        status=status,
        body=(message + "\n").encode(),
        headers={"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
    )


def _redirect(request: web.Request, path: str) -> web.Response:
    """Go's ``http.Redirect`` with 301 to the cleaned path (query kept)."""
    location = quote(path, safe="/-_.~$&+,:;=@")
    if request.query_string:
        location += "?" + request.query_string
    headers = {"Location": location}
    body = b""
    if request.method in ("GET", "HEAD"):
        headers["Content-Type"] = "text/html; charset=utf-8"
        escaped = location.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        escaped = escaped.replace('"', "&#34;").replace("'", "&#39;")
        body = f'<a href="{escaped}">Moved Permanently</a>.\n\n'.encode()
    return web.Response(status=301, body=body, headers=headers)


# -- the server -----------------------------------------------------------------------------------


def endpoint_paths(path_prefix: str) -> tuple[str, str]:
    """``(jwks, discovery)`` paths: a prefix other than ``/`` loses one trailing ``/``.

    A prefix without a leading ``/`` gets one (Go would register a host-specific pattern).
    """
    if not path_prefix or path_prefix == "/":
        return JWKS_ENDPOINT, DISCOVERY_ENDPOINT
    prefix = path_prefix.removesuffix("/")
    return clean_path(prefix + JWKS_ENDPOINT), clean_path(prefix + DISCOVERY_ENDPOINT)


class OidcServer:
    """Answers the two OIDC documents; ``jwks()`` is read on every request, so reloads show."""

    def __init__(
        self,
        *,
        jwks: Callable[[], Mapping[str, Any] | None],
        jwt_issuer: str,
        jwks_uri: str,
        path_prefix: str,
        allowed_hosts: Sequence[str],
        tls_configured: bool,
        algorithm: str,
    ) -> None:
        if not algorithm:
            raise ValueError("signature algorithm is required")
        self._jwks = jwks
        self._issuer = _go_url(jwt_issuer, "JWT issuer URI") if jwt_issuer else ""
        self._jwks_uri = _go_url(jwks_uri, "JWKS URI") if jwks_uri else ""
        self._allowed_hosts = tuple(allowed_hosts)
        self._trust_forwarded_host = bool(self._allowed_hosts) and "*" not in self._allowed_hosts
        self._scheme = "https" if tls_configured else "http"
        self._algorithm = algorithm
        self.jwks_path, self.discovery_path = endpoint_paths(path_prefix)

    def _host_allowed(self, request: web.Request) -> bool:
        if not self._allowed_hosts:
            return True
        host = request.headers.get("X-Forwarded-Host") or request.headers.get("Host") or ""
        if "*" in self._allowed_hosts or host in self._allowed_hosts:
            return True
        split = split_host_port(host)
        return split is not None and split[0] in self._allowed_hosts

    def _current_jwks(self) -> Mapping[str, Any] | None:
        document = self._jwks()
        if not document or not document.get("keys"):
            return None
        return document

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        cleaned = clean_path(path)
        if cleaned != path:
            return _redirect(request, cleaned)
        if path == self.jwks_path:
            endpoint = self._serve_jwks
        elif path == self.discovery_path:
            endpoint = self._serve_discovery
        else:
            return _text_error(404, "404 page not found")
        if not self._host_allowed(request):
            return _text_error(403, "Forbidden: unauthorized domain")
        if request.method != "GET":
            return _text_error(405, "Method not allowed")
        return endpoint(request)

    def _serve_jwks(self, request: web.Request) -> web.Response:
        document = self._current_jwks()
        if document is None:
            log.error("JWKS not available in bundle")
            return _text_error(404, "JWKS not available")
        return _json_response(go_json(dict(document)))

    def discovery(self, request: web.Request) -> dict[str, Any] | None:
        """The discovery document for this request; ``None`` when the host is unusable."""
        issuer, jwks_uri = self._issuer, self._jwks_uri
        if not issuer or not jwks_uri:
            host = request.headers.get("Host", "")
            if self._trust_forwarded_host:
                host = request.headers.get("X-Forwarded-Host") or host
            printed = url_host(host)
            if printed is None:
                return None
            base = f"{self._scheme}://{printed}" if printed else f"{self._scheme}:"
            issuer = issuer or base
            if not jwks_uri:
                try:
                    parts = urlsplit(issuer)
                except ValueError:  # e.g. an unbalanced "[" in the Host header
                    return None
                jwks_uri = urlunsplit((parts.scheme, parts.netloc, self.jwks_path, "", ""))
        return {
            "issuer": issuer,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self._algorithm],
            "scopes_supported": ["openid"],
            "claims_supported": list(CLAIMS_SUPPORTED),
        }

    def _serve_discovery(self, request: web.Request) -> web.Response:
        if self._current_jwks() is None:
            log.error("JWKS not available in bundle")
            return _text_error(404, "OIDC configuration not available")
        document = self.discovery(request)
        if document is None:
            log.error("Failed to parse host %r", request.headers.get("Host", ""))
            return _text_error(400, "Invalid host")
        # json.Encoder.Encode: struct field order, and a trailing newline.
        return _json_response(go_json(document, sort_keys=False) + b"\n")


def _json_response(body: bytes) -> web.Response:
    return web.Response(
        status=200,
        body=body,
        headers={"Content-Type": "application/json", "Cache-Control": "public, max-age=3600"},
    )


OIDC_SERVER = web.AppKey("oidc_server", OidcServer)


def application(
    *,
    jwks: Callable[[], Mapping[str, Any] | None],
    jwt_issuer: str,
    jwks_uri: str,
    path_prefix: str,
    allowed_hosts: Sequence[str],
    tls_configured: bool,
    algorithm: str,
) -> web.Application:
    """The aiohttp application; raises ``ValueError`` for an unusable issuer, URI or algorithm."""
    server = OidcServer(
        jwks=jwks,
        jwt_issuer=jwt_issuer,
        jwks_uri=jwks_uri,
        path_prefix=path_prefix,
        allowed_hosts=allowed_hosts,
        tls_configured=tls_configured,
        algorithm=algorithm,
    )
    if path_prefix and path_prefix != "/":
        log.info("Using path prefix %r for OIDC HTTP endpoints", path_prefix)
    app = web.Application()
    app[OIDC_SERVER] = server
    app.router.add_route("*", "/{tail:.*}", server.handle)
    return app


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError, ValueError) as error:
        raise OidcServerError(f"failed to load TLS certificate and key: {error}") from None
    return context


async def serve_oidc(
    app: web.Application,
    host: str,
    port: int,
    *,
    cert_file: str = "",
    key_file: str = "",
    on_ready: Callable[[int], None] | None = None,
    poll_interval: float = 5.0,
) -> None:
    """Serve ``app`` until cancelled: TLS (1.2+) when both files are given, once they exist.

    ``on_ready`` gets the bound port (useful with port 0) once the server listens.
    """
    context = None
    if cert_file and key_file:
        while not (os.path.exists(cert_file) and os.path.exists(key_file)):
            log.warning(
                "Waiting for TLS certificate and key files to be available: %s, %s",
                cert_file,
                key_file,
            )
            await asyncio.sleep(poll_interval)
        context = tls_context(cert_file, key_file)
    try:
        async with aioserver.serving(app, host, port, ssl_context=context) as bound:
            log.info(
                "Starting OIDC HTTP server%s on %s:%d",
                "" if context else " (insecure)",
                host,
                bound,
            )
            if on_ready is not None:
                on_ready(bound)
            try:
                await asyncio.Event().wait()
            finally:
                log.info("Shutting down OIDC HTTP server")
    except aioserver.BindError as error:
        raise OidcServerError(f"failed to listen on {host}:{port}: {error.reason}") from None
