"""The life of a component process: shared servers, signals, graceful stop and exit codes.

Exit codes follow Dapr's binaries: 0 after a graceful stop on SIGINT/SIGTERM, 1 on a fatal error
(logged as one line saying what was wrong). Flag errors exit 2 before this module is reached.

Start-up order: the component's module is imported first, so that a component that cannot start
fails before any port is bound; then the metrics server; then the component starts, and the
healthz server comes up once it had a chance to add its own routes and targets.

:class:`FatalError` is imported by every component and by the public API, including by commands
that never run one (``--help``, ``plugins``), so asyncio and the servers are imported only by the
functions that run a component.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from daprplane.core.component import ComponentContext, ComponentSpec
from daprplane.core.flags import FlagValues

if TYPE_CHECKING:
    import pluggy
    from aiohttp import web

    from daprplane.core import httpserver


class FatalError(Exception):
    """Raise from a component to stop the process with exit 1 and this message as the log line."""


@contextlib.asynccontextmanager
async def serving(
    app: httpserver.Application | web.Application,
    host: str,
    port: int,
    what: str,
    *,
    ssl_context: Any = None,
    shutdown_timeout: float | None = None,
) -> AsyncIterator[None]:
    """Serve ``app`` on ``host:port`` (``""`` = every interface), over TLS with ``ssl_context``
    when one is given, until the block ends; failing to listen is a :class:`FatalError` naming
    ``what``. ``app`` is a :mod:`daprplane.core.httpserver` application or an aiohttp one (the
    webhooks), which gets ``shutdown_timeout`` seconds to finish requests in flight."""
    from daprplane.core import httpserver

    if not isinstance(app, httpserver.Application):
        from daprplane.core import aioserver

        async with contextlib.AsyncExitStack() as stack:
            served = aioserver.serving(
                app, host, port, ssl_context=ssl_context, shutdown_timeout=shutdown_timeout
            )
            try:
                await stack.enter_async_context(served)
            except aioserver.BindError as error:
                raise FatalError(f"failed to start {what} on {error}") from None
            yield
        return
    server = httpserver.Server(app)
    try:
        await server.start(host or None, port, ssl_context)
    except OSError as error:
        raise FatalError(f"failed to start {what} on {host or '*'}:{port}: {error}") from None
    try:
        yield
    finally:
        await server.close()


def _port(value: str | int, flag: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise FatalError(f"invalid value for --{flag}: {value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise FatalError(f"invalid value for --{flag}: {port} is out of range")
    return port


async def _serve_component(context: ComponentContext, spec: ComponentSpec) -> None:
    import asyncio

    from daprplane.core import metrics as metrics_mod

    flags = context.flags
    run = spec.load_run()
    healthz_target = context.health.add_target("healthz-server")
    metrics_target = context.health.add_target("metrics-exporter")
    async with contextlib.AsyncExitStack() as stack:
        if flags.enable_metrics:
            port = _port(flags.metrics_port, "metrics-port")
            app = metrics_mod.application(context.metrics)
            await stack.enter_async_context(
                serving(app, flags.metrics_listen_address, port, "metrics server")
            )
        metrics_target.ready()
        # The component starts first so that it registers its healthz targets (not ready yet)
        # before the healthz server answers: no probe may see 200 before the component is up.
        component = asyncio.create_task(run(context), name=spec.name)
        await asyncio.sleep(0)
        try:
            port = _port(flags.healthz_port, "healthz-port")
            await stack.enter_async_context(
                serving(
                    context.health.application(),
                    flags.healthz_listen_address,
                    port,
                    "healthz server",
                )
            )
        except BaseException:
            component.cancel()
            with contextlib.suppress(BaseException):
                await component
            raise
        healthz_target.ready()
        await component


async def _main(spec: ComponentSpec, flags: FlagValues, hook: pluggy.HookRelay) -> int:
    import asyncio

    from daprplane.core import health as health_mod
    from daprplane.core import metrics as metrics_mod

    logger = logging.getLogger(spec.scope or f"dapr.{spec.name}")
    context = ComponentContext(
        name=spec.name,
        flags=flags,
        hook=hook,
        health=health_mod.Health(),
        metrics=metrics_mod.new_registry(),
        logger=logger,
    )
    task = asyncio.create_task(_serve_component(context, spec))
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def on_signal(signum: signal.Signals) -> None:
        if received:
            return
        received.append(signum.name)
        logger.info("Received signal '%s'; beginning shutdown", signum.name)
        context.stopping.set()
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await task
    except asyncio.CancelledError:
        if not received:
            raise
    except FatalError as error:
        logger.critical("%s", error)
        return 1
    except Exception as error:
        logger.critical("Fatal error: %s: %s", type(error).__name__, error, exc_info=error)
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    logger.info("%s shut down gracefully", spec.name)
    return 0


def run(spec: ComponentSpec, flags: FlagValues, hook: pluggy.HookRelay) -> int:
    """Run ``spec`` until it stops; returns the process exit code."""
    import asyncio

    return asyncio.run(_main(spec, flags, hook))
