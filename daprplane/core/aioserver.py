"""Serving an aiohttp application on one address: the setup every aiohttp server here shares.

The injector's webhook, sentry's OIDC discovery server and the operator's conversion webhook run
aiohttp inside a component whose process lifecycle (signals, access logging) the host owns, so
each is an ``AppRunner`` without signal handling or access log, and one TCP site that can rebind
an address still in ``TIME_WAIT`` after a restart. A failure to bind is a :class:`BindError`,
raised before the block is entered, so that a caller tells it apart from errors of its own and
words it as its component does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web


class BindError(Exception):
    """The site could not listen on ``host:port``; ``reason`` is the operating system's."""

    def __init__(self, host: str, port: int, reason: OSError) -> None:
        super().__init__(f"{host or '*'}:{port}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason

    @property
    def address(self) -> str:
        """``host:port`` as logs show it, ``*`` standing for every interface."""
        return f"{self.host or '*'}:{self.port}"


@contextlib.asynccontextmanager
async def serving(
    app: web.Application,
    host: str,
    port: int,
    *,
    ssl_context: Any = None,
    shutdown_timeout: float | None = None,
) -> AsyncIterator[int]:
    """Serve ``app`` on ``host:port`` (``""``: every interface) until the block ends; yields the
    bound port, which differs from ``port`` when that is 0.

    ``ssl_context`` serves HTTPS. ``shutdown_timeout`` is how long requests in flight may take
    once the block ends (aiohttp's own default when ``None``).
    """
    from aiohttp import web

    options: dict[str, Any] = {"access_log": None, "handle_signals": False}
    if shutdown_timeout is not None:
        options["shutdown_timeout"] = shutdown_timeout
    runner = web.AppRunner(app, **options)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host or None, port, ssl_context=ssl_context, reuse_address=True)
        try:
            await site.start()
        except OSError as error:
            raise BindError(host, port, error) from None
        addresses = runner.addresses
        yield int(addresses[0][1]) if addresses else port
    finally:
        await runner.cleanup()
