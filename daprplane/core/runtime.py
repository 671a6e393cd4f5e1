"""The life of a component process: shared servers, signals, graceful stop and exit codes.

Exit codes follow Dapr's binaries: 0 after a graceful stop on SIGINT/SIGTERM, 1 on a fatal error
(logged as one line saying what was wrong). Flag errors exit 2 before this module is reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

import pluggy
from aiohttp import web

from daprplane.core import health as health_mod
from daprplane.core import metrics as metrics_mod
from daprplane.core.component import ComponentContext, ComponentSpec
from daprplane.core.flags import FlagValues


class FatalError(Exception):
    """Raise from a component to stop the process with exit 1 and this message as the log line."""


@contextlib.asynccontextmanager
async def serving(
    app: web.Application, host: str, port: int, what: str, *, ssl_context: Any = None
) -> AsyncIterator[None]:
    """Serve ``app`` on ``host:port`` (``""`` = every interface), over TLS with ``ssl_context``
    when one is given, until the block ends."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host or None, port, ssl_context=ssl_context, reuse_address=True)
        try:
            await site.start()
        except OSError as error:
            raise FatalError(f"failed to start {what} on {host or '*'}:{port}: {error}") from None
        yield
    finally:
        await runner.cleanup()


def _port(value: str | int, flag: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise FatalError(f"invalid value for --{flag}: {value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise FatalError(f"invalid value for --{flag}: {port} is out of range")
    return port


async def _serve_component(context: ComponentContext, spec: ComponentSpec) -> None:
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
        # The healthz app is built now so that routes the component adds while starting are
        # served; aiohttp freezes an application's router once it runs.
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
    return asyncio.run(_main(spec, flags, hook))
