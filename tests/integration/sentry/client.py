"""A test client for sentry's TLS gRPC API that verifies sentry as Dapr's clients do.

gRPC's TLS channel credentials check the server's host name, and sentry's certificate carries
only a SPIFFE URI SAN, so they cannot be used. Instead a loopback proxy (its own thread and event
loop) accepts a plaintext gRPC channel and opens each upstream connection itself with Python's
``ssl``: chain verified against the trust anchors, ALPN ``h2``, no host-name check, then an exact
SPIFFE ID match on the leaf. A connection that fails any of these is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from cryptography import x509

from daprplane._proto.sentry.v1 import sentry_pb2_grpc
from daprplane.core.security import spiffe

SENTRY_ID = "spiffe://localhost/ns/default/dapr-sentry"


def tls_context(trust_anchors_pem: bytes, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=trust_anchors_pem.decode())
    context.check_hostname = False  # the identity is the SPIFFE ID, checked after the handshake
    context.set_alpn_protocols(["h2"])
    if maximum is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # asking for TLS < 1.2 on purpose
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.maximum_version = maximum
    return context


@dataclass
class Handshake:
    version: str
    alpn: str | None
    leaf: x509.Certificate


def handshake(
    port: int, trust_anchors_pem: bytes, maximum: ssl.TLSVersion | None = None
) -> Handshake:
    """One TLS handshake with sentry; raises ``ssl.SSLError`` if it fails or does not verify."""
    context = tls_context(trust_anchors_pem, maximum)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="sentry") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return Handshake(
            tls.version() or "",
            tls.selected_alpn_protocol(),
            x509.load_der_x509_certificate(der),
        )


@dataclass
class SpiffeProxy:
    target_port: int
    trust_anchors_pem: bytes
    expected_id: str = SENTRY_ID
    port: int = 0
    leaves: list[x509.Certificate] = field(default_factory=list)
    rejected: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # asyncio logs a cancelled connection callback as an error; the proxy cancels on purpose.
        self.writers.append(writer)
        with contextlib.suppress(asyncio.CancelledError):
            await self._connect(reader, writer)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1",
                self.target_port,
                ssl=tls_context(self.trust_anchors_pem),
                server_hostname="sentry",
            )
        except (OSError, ssl.SSLError):
            self.rejected += 1
            writer.close()
            return
        ssl_object = up_writer.get_extra_info("ssl_object")
        leaf = x509.load_der_x509_certificate(ssl_object.getpeercert(binary_form=True))
        try:
            identity = str(spiffe.from_certificate(leaf))
        except spiffe.SpiffeIdError:
            identity = ""
        if ssl_object.selected_alpn_protocol() != "h2" or identity != self.expected_id:
            self.rejected += 1
            up_writer.close()
            writer.close()
            return
        self.leaves.append(leaf)
        self.writers.append(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @contextlib.contextmanager
    def running(self) -> Iterator[SpiffeProxy]:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        holder: dict[str, asyncio.AbstractServer] = {}

        async def start() -> None:
            holder["server"] = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = holder["server"].sockets[0].getsockname()[1]
            started.set()

        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        try:
            yield self
        finally:

            async def stop() -> None:
                holder["server"].close()
                current = asyncio.current_task()
                others = [t for t in asyncio.all_tasks() if t is not current]
                for task in others:
                    task.cancel()
                await asyncio.gather(*others, return_exceptions=True)
                for open_writer in self.writers:
                    open_writer.transport.abort()
                await asyncio.sleep(0.05)  # let the transports finish closing

            asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


@contextlib.contextmanager
def ca_stub(
    port: int, trust_anchors_pem: bytes, expected_id: str = SENTRY_ID
) -> Iterator[tuple[sentry_pb2_grpc.CAStub, SpiffeProxy]]:
    """A ``CA`` stub whose every connection to sentry is verified as described above."""
    proxy = SpiffeProxy(port, trust_anchors_pem, expected_id)
    with proxy.running(), grpc.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
        yield sentry_pb2_grpc.CAStub(channel), proxy
