"""Sentry's worker processes (:mod:`.worker`): started, kept up to date and stopped by sentry.

``DAPRPLANE_SENTRY_WORKERS`` sets how many processes serve gRPC in all, sentry included; the
default is one per CPU this process may run on, and ``1`` turns workers off. Workers run only
when every enabled validator decides from the request alone (insecure), JWTs are off and no
plugin observes issued certificates; otherwise sentry serves alone, as before, and says so.

Sentry remains the one place for health, metrics and the CA: it sends each worker the CA and its
serving certificate whenever they change, adds the counts the workers report to its own metric
series, and stops the workers (closing their control channel) when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
from typing import Any

from daprplane.plugins.sentry.worker_wire import frame, read_message

log = logging.getLogger("dapr.sentry.workers")

WORKERS_ENV = "DAPRPLANE_SENTRY_WORKERS"
#: How long a worker may take to bind the port after it was started.
START_TIMEOUT = 30.0
#: How long a stopping worker may take before it is killed (its grace period, and a margin).
STOP_TIMEOUT = 7.0


def process_count() -> int:
    """Processes that should serve gRPC, sentry included (at least 1)."""
    value = os.environ.get(WORKERS_ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            log.warning("Ignoring %s=%r: not a number", WORKERS_ENV, value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def why_not(validators: Any, jwt_enabled: bool, hook: Any) -> str | None:
    """Why this sentry must serve alone, or None when workers can sign as it would."""
    from daprplane.plugins.sentry.validators.base import TokenValidator

    if set(validators.validators) - {TokenValidator.INSECURE}:
        return "a token validator other than insecure is enabled"
    if jwt_enabled:
        return "JWT issuance is enabled"
    caller = getattr(hook, "daprplane_sentry_certificate_issued", None)
    if caller is not None and caller.get_hookimpls():
        return "a plugin observes issued certificates"
    return None


def ca_payload(credentials: Any) -> dict[str, bytes]:
    bundle = credentials.bundle
    return {
        "anchors": bundle.trust_anchors_pem,
        "chain": bundle.issuer_chain_pem,
        "key": bundle.issuer_key_pem,
    }


class _Worker:
    def __init__(self, process: subprocess.Popen[bytes], writer: asyncio.StreamWriter) -> None:
        self.process = process
        self.writer = writer
        self.reader_task: asyncio.Task[None] | None = None

    def send(self, kind: str, payload: Any = None) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame(kind, payload))


class WorkerPool:
    """``count`` worker processes serving ``address`` beside sentry."""

    def __init__(self, count: int, metrics: Any) -> None:
        self.count = count
        self.metrics = metrics
        self.workers: list[_Worker] = []

    async def start(self, setup: dict[str, Any]) -> None:
        """Start every worker and wait until each serves; a worker that cannot is stopped and
        logged, and sentry keeps serving with the others."""
        started = await asyncio.gather(
            *(self._start_one(setup) for _ in range(self.count)), return_exceptions=True
        )
        for outcome in started:
            if isinstance(outcome, BaseException):
                log.error("A sentry worker process did not start: %s", outcome)
        log.info("Serving gRPC from %d worker processes besides this one", len(self.workers))

    async def _start_one(self, setup: dict[str, Any]) -> None:
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "daprplane.plugins.sentry.worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        worker = _Worker(process, writer)
        worker.send("setup", setup)
        try:
            message = await asyncio.wait_for(read_message(reader), START_TIMEOUT)
        except TimeoutError:
            message = None
        if message is None or message[0] != "serving":
            writer.close()
            await asyncio.to_thread(self._reap, process)
            detail = message[1] if message else "no answer"
            raise RuntimeError(f"worker {process.pid}: {detail}")
        worker.reader_task = asyncio.create_task(self._follow(worker, reader))
        self.workers.append(worker)

    async def _follow(self, worker: _Worker, reader: asyncio.StreamReader) -> None:
        metrics = self.metrics
        while (message := await read_message(reader)) is not None:
            kind, payload = message
            if kind == "counts":
                metrics.add_counts(*payload)
        if worker in self.workers:
            log.error("Sentry worker process %d exited", worker.process.pid)

    def broadcast(self, kind: str, payload: Any) -> None:
        for worker in self.workers:
            worker.send(kind, payload)

    @staticmethod
    def _reap(process: subprocess.Popen[bytes]) -> None:
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    async def stop(self) -> None:
        """Close every control channel (each worker then stops serving) and wait for them."""
        workers, self.workers = self.workers, []
        for worker in workers:
            worker.writer.close()
        await asyncio.gather(*(asyncio.to_thread(self._reap, w.process) for w in workers))
        for worker in workers:
            if worker.reader_task is not None:
                worker.reader_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reader_task
