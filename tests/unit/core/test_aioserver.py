"""``core.aioserver``: one aiohttp site, served over real sockets, and its bind failures."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web

from daprplane.core import aioserver
from daprplane.core.runtime import FatalError, serving


def _app(
    started: asyncio.Event | None = None, release: asyncio.Event | None = None
) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        if started is not None and release is not None:
            started.set()
            await release.wait()
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    return app


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_serves_on_the_bound_port_until_the_block_ends() -> None:
    async with aioserver.serving(_app(), "127.0.0.1", 0) as port:
        assert port > 0
        url = f"http://127.0.0.1:{port}/"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            assert await response.text() == "hello"
    assert not _listening(port)


async def test_a_taken_port_is_a_bind_error_before_the_block() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        entered = False
        with pytest.raises(aioserver.BindError) as raised:
            async with aioserver.serving(_app(), "127.0.0.1", port):
                entered = True
        assert not entered
        assert raised.value.address == f"127.0.0.1:{port}"
        assert isinstance(raised.value.reason, OSError)
        assert str(raised.value).startswith(f"127.0.0.1:{port}: ")


def test_every_interface_is_shown_as_a_star() -> None:
    error = aioserver.BindError("", 4000, OSError(98, "Address already in use"))
    assert error.address == "*:4000"
    assert str(error) == "*:4000: [Errno 98] Address already in use"


async def test_a_request_in_flight_finishes_while_the_server_stops() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_client(port: int) -> int:
        url = f"http://127.0.0.1:{port}/"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status

    async with aioserver.serving(
        _app(started, release), "127.0.0.1", 0, shutdown_timeout=5.0
    ) as port:
        client = asyncio.create_task(slow_client(port))
        await asyncio.wait_for(started.wait(), 5)
        # Let the handler finish shortly after the block starts closing the server.
        asyncio.get_running_loop().call_later(0.2, release.set)
    assert await asyncio.wait_for(client, 5) == 200


async def test_runtime_serving_words_a_bind_failure_as_a_fatal_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            FatalError, match=rf"^failed to start the webhook on 127\.0\.0\.1:{port}: "
        ):
            async with serving(_app(), "127.0.0.1", port, "the webhook"):
                pass
    async with serving(_app(), "127.0.0.1", 0, "the webhook"):
        pass
