"""A sentry worker process: one more gRPC server on sentry's port, signing with the same CA.

gRPC's Python layer costs a few hundred microseconds of one core per call and holds the GIL, so
one process signs at most about one core's worth of certificates. Sentry therefore starts
workers (:mod:`.workers`) that bind the same address with ``SO_REUSEPORT`` (gRPC's default on
Linux), and the kernel spreads incoming connections over every process listening on it: gRPC's
documented pattern for using several cores from Python.

A worker owns no state of its own. Sentry sends it, over the inherited control channel, its
settings, the CA and sentry's serving certificate, and sends them again whenever they change; the
worker reports its metric counts back, so ``/metrics`` and ``/healthz`` stay sentry's alone.
Workers run only with validators that need nothing but the request (insecure), so every process
decides each request exactly as sentry would. The worker stops when the channel closes (sentry
stopped or died) or on SIGTERM; SIGINT is left to sentry, which stops its workers itself.

Run as ``python -m daprplane.plugins.sentry.worker <control-fd>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from typing import Any

log = logging.getLogger("dapr.sentry.worker")

#: Seconds in-flight calls get to finish when the worker stops (sentry's own grace period).
GRACE_PERIOD = 5.0


def _bundle(pems: dict[str, bytes]) -> Any:
    from cryptography.hazmat.primitives import serialization

    from daprplane.plugins.sentry.ca import Credentials, pem
    from daprplane.plugins.sentry.ca.bundle import TrustBundle

    # Already verified by sentry: rebuilt as it is, not checked again.
    bundle = TrustBundle.build(
        list(pem.decode_certificates(pems["anchors"])),
        list(pem.decode_certificates(pems["chain"])),
        serialization.load_pem_private_key(pems["key"], password=None),  # type: ignore[arg-type]
    )
    return Credentials(bundle=bundle)


class _Counts:
    """Metric counts since the last report; sentry adds them to its own series."""

    def __init__(self, send: Any) -> None:
        self._send = send
        self.pending = [0, 0, 0]  # received, succeeded, failed
        self._scheduled = False

    def _bump(self, index: int) -> None:
        self.pending[index] += 1
        if not self._scheduled:
            # One report per event-loop turn, however many calls finished in it.
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        counts, self.pending = self.pending, [0, 0, 0]
        self._send("counts", tuple(counts))

    def request_received(self) -> None:
        self._bump(0)

    def succeeded(self) -> None:
        self._bump(1)

    def failed(self) -> None:
        self._bump(2)


async def serve(control: socket.socket) -> None:
    import grpc

    from daprplane.plugins.sentry.server import Authority, CAServicer, add_to_server
    from daprplane.plugins.sentry.validators import ValidatorSet
    from daprplane.plugins.sentry.validators.base import TokenValidator
    from daprplane.plugins.sentry.validators.insecure import InsecureValidator
    from daprplane.plugins.sentry.worker_wire import frame, read_message

    reader, writer = await asyncio.open_connection(sock=control)

    def send(kind: str, payload: Any = None) -> None:
        if not writer.is_closing():
            writer.write(frame(kind, payload))

    message = await read_message(reader)
    if message is None or message[0] != "setup":
        return
    setup = message[1]
    authority = Authority(
        credentials=_bundle(setup["ca"]),
        workload_cert_ttl=setup["ttl"],
        allowed_clock_skew=setup["skew"],
        namespace=setup["namespace"],
        cluster_domain=setup["cluster_domain"],
    )
    validators = ValidatorSet(
        validators={TokenValidator.INSECURE: InsecureValidator()},
        default=setup["default_validator"],
    )
    serving: list[grpc.ServerCertificateConfiguration | None] = [None]

    def configuration(pair: tuple[bytes, bytes]) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([pair])

    server = grpc.aio.server()
    add_to_server(CAServicer(authority, validators, _Counts(send)), server)  # type: ignore[arg-type]

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        pending, serving[0] = serving[0], None
        return pending

    credentials = grpc.dynamic_ssl_server_credentials(
        configuration(setup["serving"]), fetch, require_client_authentication=False
    )
    if not server.add_secure_port(setup["address"], credentials):
        send("failed", f"could not listen on {setup['address']}")
        return
    await server.start()
    send("serving")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def follow() -> None:
        while (message := await read_message(reader)) is not None:
            kind, payload = message
            if kind == "ca":
                authority.credentials = _bundle(payload)
            elif kind == "serving":
                serving[0] = configuration(payload)
        stop.set()  # sentry closed the channel

    follower = asyncio.create_task(follow())
    try:
        await stop.wait()
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await server.stop(GRACE_PERIOD)
        writer.close()


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # sentry stops its workers itself
    logging.basicConfig(
        level=logging.INFO,
        format="time=%(asctime)s level=%(levelname)s scope=%(name)s msg=%(message)s",
    )
    control = socket.socket(fileno=int(arguments[0]))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(control))
    return 0


if __name__ == "__main__":
    sys.exit(main())
