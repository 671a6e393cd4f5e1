"""A small asyncio HTTP/1.1 server for the healthz and metrics ports.

Why not aiohttp, which serves every other HTTP port of daprplane (webhooks, OIDC): importing
aiohttp's server costs 0.15-0.3 s, which is most of a launcher's start-up and several times the
whole start-up of Dapr's Go binaries, and a process that only runs placement or sentry needs no
other part of it. These two ports answer a few GET routes to kubelet probes and Prometheus
scrapers, which is all this module does: requests with a ``Content-Length`` body (no chunked
bodies), keep-alive and pipelining, exact-path routes plus an optional catch-all, and bounded
reads so that a slow or hostile client cannot hold memory or a connection for long.

A handler is ``async def handler(request: Request) -> Response``. It may also return an aiohttp
``web.Response`` (anything with ``status``, ``body`` and ``headers``), so routes written for the
aiohttp-served healthz port of earlier releases keep working.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

log = logging.getLogger("daprplane.core.httpserver")

#: Request line plus headers; larger heads get 431 and the connection is closed.
MAX_HEAD_BYTES = 16 * 1024
#: Request bodies (which no route here reads) larger than this get 413.
MAX_BODY_BYTES = 1024 * 1024
#: How long a connection may stay idle between requests, or take to send one request's head.
IDLE_TIMEOUT = 75.0
#: How long a request body may take to arrive once its head has.
BODY_TIMEOUT = 30.0

#: Headers the server writes itself; a handler's values for them are ignored.
_OWN_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "date", "server"})


@dataclass(frozen=True)
class Request:
    """One parsed request. Header names are lower-case."""

    method: str
    path: str
    query_string: str
    version: str
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def path_qs(self) -> str:
        return f"{self.path}?{self.query_string}" if self.query_string else self.path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.query_string, keep_blank_values=True))


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Any]]


@dataclass
class Application:
    """Routes by exact path and method; ``fallback`` answers every path no route has."""

    routes: dict[str, dict[str, Handler]] = field(default_factory=dict)
    fallback: dict[str, Handler] = field(default_factory=dict)

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        methods = self.routes.setdefault(path, {})
        method = method.upper()
        if method in methods:
            raise ValueError(f"{method} {path} is already routed")
        methods[method] = handler

    def add_fallback(self, method: str, handler: Handler) -> None:
        self.fallback[method.upper()] = handler

    def resolve(self, method: str, path: str) -> Handler | Response:
        """The handler for ``method path``, or the 404/405 response when there is none."""
        methods = self.routes.get(path, self.fallback)
        handler = methods.get(method)
        if handler is None and method == "HEAD":
            handler = methods.get("GET")
        if handler is not None:
            return handler
        if not methods:
            return _text(404, "404 page not found\n")
        allowed = sorted({*methods, *(("HEAD",) if "GET" in methods else ())})
        return _text(405, "Method Not Allowed\n", {"Allow": ", ".join(allowed)})


def _text(status: int, text: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, text.encode(), "text/plain; charset=utf-8", headers or {})


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.response = _text(status, f"{reason}\n")


def _parse_head(head: bytes) -> tuple[str, str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400, "Bad Request")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or " " in name:
            raise _BadRequest(400, "Bad Request")
        key = name.lower()
        value = value.strip()
        # Repeated headers join with commas (RFC 9110 5.3), as every framework presents them.
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if target.startswith(("http://", "https://")):  # absolute-form, sent to proxies
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    if not target.startswith("/"):
        raise _BadRequest(400, "Bad Request")
    path, _, query = target.partition("?")
    return method.upper(), path, query, version, headers


def _keep_alive(version: str, headers: Mapping[str, str]) -> bool:
    tokens = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _as_response(result: Any) -> Response:
    """A handler's result as a :class:`Response`; aiohttp responses are read by duck typing."""
    if isinstance(result, Response):
        return result
    status = int(getattr(result, "status", 200))
    body = getattr(result, "body", b"")
    if body is None:
        body = b""
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"unsupported response body type {type(body).__name__}")
    headers = {
        name: value
        for name, value in dict(getattr(result, "headers", {}) or {}).items()
        if name.lower() not in _OWN_HEADERS
    }
    return Response(status, bytes(body), None, headers)


def _encode(response: Response, head_only: bool, close: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _OWN_HEADERS}
    if response.content_type and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = response.content_type
    lines += [f"{_field(name)}: {_field(str(value))}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(response.body)}")
    lines.append("Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()))
    if close:
        lines.append("Connection: close")
    # Header values are latin-1 on the wire; a handler's other characters become "?".
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head if head_only else head + response.body


def _field(text: str) -> str:
    # A line break inside a handler's header would start a header (or a body) of its own.
    return text.replace("\r", " ").replace("\n", " ")


class Server:
    """Serves one :class:`Application` on one listening socket until :meth:`close`."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str | None, port: int, ssl_context: Any = None) -> None:
        self._server = await asyncio.start_server(
            self._connection,
            host,
            port,
            ssl=ssl_context,
            reuse_address=True,
            limit=MAX_HEAD_BYTES,
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away or stalled (TimeoutError is an OSError): nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as error:
                if error.partial.strip():
                    await self._reply(writer, _text(400, "Bad Request\n"), False, True)
                return
            except asyncio.LimitOverrunError:
                too_large = _text(431, "Request Header Fields Too Large\n")
                await self._reply(writer, too_large, False, True)
                return
            try:
                method, path, query, version, headers = _parse_head(head)
                body = await self._body(reader, headers)
            except _BadRequest as bad:
                await self._reply(writer, bad.response, False, True)
                return
            request = Request(method, path, query, version, headers, body)
            keep_alive = _keep_alive(version, headers)
            response = await self._dispatch(request)
            await self._reply(writer, response, method == "HEAD", not keep_alive)
            if not keep_alive:
                return

    async def _body(self, reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
        if "transfer-encoding" in headers:
            raise _BadRequest(501, "Not Implemented")
        raw = headers.get("content-length")
        if raw is None:
            return b""
        if not raw.isdigit():
            raise _BadRequest(400, "Bad Request")
        length = int(raw)
        if length > MAX_BODY_BYTES:
            raise _BadRequest(413, "Request Entity Too Large")
        if length == 0:
            return b""
        async with asyncio.timeout(BODY_TIMEOUT):
            return await reader.readexactly(length)

    async def _dispatch(self, request: Request) -> Response:
        handler = self.app.resolve(request.method, request.path)
        if isinstance(handler, Response):
            return handler
        try:
            return _as_response(await handler(request))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Handler for %s %s failed", request.method, request.path)
            return _text(500, "Internal Server Error\n")

    @staticmethod
    async def _reply(
        writer: asyncio.StreamWriter, response: Response, head_only: bool, close: bool
    ) -> None:
        writer.write(_encode(response, head_only, close))
        await writer.drain()
