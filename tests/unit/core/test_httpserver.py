"""The healthz/metrics HTTP server: routing, keep-alive, bad input, and the healthz contract."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daprplane.core import httpserver, metrics
from daprplane.core.health import Health


@pytest.fixture
async def health_port() -> AsyncIterator[tuple[Health, int]]:
    health = Health()
    server = httpserver.Server(health.application())
    await server.start("127.0.0.1", 0)
    try:
        yield health, server.port
    finally:
        await server.close()


async def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def statuses(raw: bytes) -> list[int]:
    """The status of every response in ``raw`` (a status line starts the data or follows a
    header block's end or a text body's final newline)."""
    return [int(code) for code in re.findall(rb"(?:^|\n)HTTP/1\.1 (\d{3}) ", raw)]


def get(path: str, *, method: str = "GET", extra: str = "", close: bool = True) -> bytes:
    connection = "Connection: close\r\n" if close else ""
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{connection}{extra}\r\n".encode()


async def test_healthz_is_503_until_every_target_is_ready(health_port: tuple[Health, int]) -> None:
    health, port = health_port
    assert statuses(await exchange(port, get("/healthz"))) == [503]  # no target yet
    target = health.add_target("thing")
    assert statuses(await exchange(port, get("/healthz"))) == [503]
    target.ready()
    raw = await exchange(port, get("/healthz"))
    assert statuses(raw) == [200]
    assert raw.endswith(b"Content-Length: 0\r\nDate: " + raw.split(b"Date: ")[1].split(b"\r\n")[0]
                        + b"\r\nConnection: close\r\n\r\n")  # fmt: skip


async def test_keep_alive_and_pipelining_on_one_connection(health_port: tuple[Health, int]) -> None:
    health, port = health_port
    health.add_target("thing").ready()
    raw = await exchange(port, get("/healthz", close=False) * 3 + get("/healthz"))
    assert statuses(raw) == [200, 200, 200, 200]


async def test_http_10_closes_after_the_answer(health_port: tuple[Health, int]) -> None:
    _, port = health_port
    raw = await exchange(port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert statuses(raw) == [503]


async def test_head_answers_without_a_body(health_port: tuple[Health, int]) -> None:
    health, port = health_port

    async def text(_: httpserver.Request) -> httpserver.Response:
        return httpserver.Response(body=b"hello", content_type="text/plain")

    health.add_route("GET", "/text", text)
    raw = await exchange(port, get("/text", method="HEAD"))
    assert statuses(raw) == [200]
    assert b"Content-Length: 5\r\n" in raw and raw.endswith(b"\r\n\r\n")


async def test_unknown_path_and_wrong_method(health_port: tuple[Health, int]) -> None:
    _, port = health_port
    raw = await exchange(port, get("/nope"))
    assert statuses(raw) == [404] and raw.endswith(b"404 page not found\n")
    raw = await exchange(port, get("/healthz", method="POST", extra="Content-Length: 0\r\n"))
    assert statuses(raw) == [405] and b"Allow: GET, HEAD\r\n" in raw


async def test_routes_added_while_serving_are_served(health_port: tuple[Health, int]) -> None:
    health, port = health_port
    assert statuses(await exchange(port, get("/late"))) == [404]

    async def late(request: httpserver.Request) -> httpserver.Response:
        return httpserver.Response(body=request.query.get("q", "").encode())

    health.add_route("GET", "/late", late)
    raw = await exchange(port, get("/late?q=here"))
    assert statuses(raw) == [200] and raw.endswith(b"\r\n\r\nhere")


async def test_aiohttp_responses_from_handlers_still_work(health_port: tuple[Health, int]) -> None:
    health, port = health_port

    async def legacy(_: object) -> web.Response:
        return web.json_response({"greeting": "hi"}, headers={"X-Extra": "1"})

    health.add_route("GET", "/legacy", legacy)
    raw = await exchange(port, get("/legacy"))
    assert statuses(raw) == [200]
    assert b"Content-Type: application/json" in raw and b"X-Extra: 1\r\n" in raw
    assert raw.endswith(b'{"greeting": "hi"}')


async def test_a_failing_handler_is_a_500_and_the_server_goes_on(
    health_port: tuple[Health, int],
) -> None:
    health, port = health_port

    async def broken(_: httpserver.Request) -> httpserver.Response:
        raise RuntimeError("boom")

    async def splitting(_: httpserver.Request) -> httpserver.Response:
        return httpserver.Response(headers={"X-Bad": "a\r\nInjected: yes"})

    health.add_route("GET", "/broken", broken)
    health.add_route("GET", "/split", splitting)
    assert statuses(await exchange(port, get("/broken"))) == [500]
    raw = await exchange(port, get("/split"))
    assert b"\r\nInjected: yes" not in raw and b"X-Bad: a  Injected: yes\r\n" in raw
    assert statuses(await exchange(port, get("/healthz"))) == [503]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /healthz\r\n\r\n", 400),
        (b"GET healthz HTTP/1.1\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
        (b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
        (b"GET /healthz HT", 400),  # the client gave up half-way
    ],
)
async def test_bad_requests_get_an_answer_and_a_close(
    health_port: tuple[Health, int], request_bytes: bytes, status: int
) -> None:
    _, port = health_port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_bytes)
    await writer.drain()
    if request_bytes.endswith(b"HT"):
        writer.write_eof()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert statuses(raw) == [status]
    assert b"Connection: close\r\n" in raw


async def test_a_body_is_read_so_the_next_request_parses(health_port: tuple[Health, int]) -> None:
    _, port = health_port
    first = get("/healthz", method="POST", extra="Content-Length: 5\r\n", close=False) + b"hello"
    raw = await exchange(port, first + get("/healthz"))
    assert statuses(raw) == [405, 503]


async def test_absolute_form_target_is_routed_by_its_path(health_port: tuple[Health, int]) -> None:
    _, port = health_port
    raw = await exchange(port, b"GET http://x/healthz?a=1 HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert statuses(raw) == [503]


async def test_metrics_on_any_path() -> None:
    registry = metrics.new_registry()
    server = httpserver.Server(metrics.application(registry))
    await server.start("127.0.0.1", 0)
    try:
        for path in ("/", "/metrics", "/anything/else"):
            raw = await exchange(server.port, get(path))
            assert statuses(raw) == [200]
            assert b"Content-Type: text/plain; version=" in raw
            assert b"# TYPE process_resident_memory_bytes gauge" in raw
        assert statuses(await exchange(server.port, get("/", method="DELETE"))) == [405]
    finally:
        await server.close()


async def test_close_ends_idle_keep_alive_connections() -> None:
    server = httpserver.Server(Health().application())
    await server.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(get("/healthz", close=False))
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 503")
    await asyncio.wait_for(server.close(), 10)
    assert await asyncio.wait_for(reader.read(), 10) is not None  # EOF, not a hang
    writer.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=2048) | st.builds(lambda b: b + b"\r\n\r\n", st.binary(max_size=512))
)
async def test_arbitrary_bytes_never_break_the_server(data: bytes) -> None:
    health = Health()
    health.add_target("t").ready()
    server = httpserver.Server(health.application())
    await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(data)
        writer.write_eof()
        raw = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        for line in raw.split(b"\r\n"):
            if line.startswith(b"HTTP/"):
                assert line.startswith(b"HTTP/1.1 ") and line.split()[1].isdigit()
        # Whatever came before, the next client is served.
        assert statuses(await exchange(server.port, get("/healthz"))) == [200]
    finally:
        await server.close()
