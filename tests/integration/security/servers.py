"""Small real gRPC servers for the identity library's tests."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import grpc
from cryptography import x509

from daprplane._proto.sentry.v1 import sentry_pb2, sentry_pb2_grpc
from daprplane.core.security import authz
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.svid import Svid
from tests.pki import SentryCA, pem_of

SENTRY_ID = "spiffe://localhost/ns/default/dapr-sentry"
CLOCK_SKEW = timedelta(seconds=1)


class FakeSentry(sentry_pb2_grpc.CAServicer):
    """Signs any CSR as ``spiffe://<td or public>/ns/<namespace>/<id>`` with a test CA."""

    def __init__(self, ca: SentryCA, ttl: timedelta = timedelta(hours=1)) -> None:
        self.ca = ca
        self.ttl = ttl
        self.requests: list[sentry_pb2.SignCertificateRequest] = []
        self.fail_with: tuple[grpc.StatusCode, str] | None = None

    async def SignCertificate(
        self, request: sentry_pb2.SignCertificateRequest, context: grpc.aio.ServicerContext
    ) -> sentry_pb2.SignCertificateResponse:
        self.requests.append(request)
        if self.fail_with is not None:
            await context.abort(*self.fail_with)
        csr = x509.load_pem_x509_csr(request.certificate_signing_request)
        spiffe_id = (
            f"spiffe://{request.trust_domain or 'public'}/ns/{request.namespace}/{request.id}"
        )
        # Backdated a second, as sentry backdates by its allowed clock skew: a leaf valid from
        # this very second is "not yet valid" to a verifier if the clock steps back a little.
        leaf = self.ca.leaf([spiffe_id], csr.public_key(), ttl=self.ttl, skew=CLOCK_SKEW)
        response = sentry_pb2.SignCertificateResponse(
            workload_certificate=pem_of(leaf, self.ca.issuer),
            trust_chain_certificates=[self.ca.anchors_pem],
        )
        response.valid_until.FromDatetime(leaf.not_valid_after_utc)
        return response


class WhoAmI(sentry_pb2_grpc.CAServicer):
    """Answers with the caller's SPIFFE ID as :func:`authz.authorize` sees it."""

    def __init__(self, authorizer: authz.Authorizer | None = None) -> None:
        self.authorizer = authorizer
        self.calls = 0

    async def SignCertificate(
        self, request: sentry_pb2.SignCertificateRequest, context: grpc.aio.ServicerContext
    ) -> sentry_pb2.SignCertificateResponse:
        self.calls += 1
        identity = await authz.authorize(context, self.authorizer)
        return sentry_pb2.SignCertificateResponse(workload_certificate=str(identity).encode())


@contextlib.asynccontextmanager
async def grpc_server(
    servicer: sentry_pb2_grpc.CAServicer,
    add_port: Callable[[grpc.aio.Server], int],
) -> AsyncIterator[int]:
    server = grpc.aio.server()
    sentry_pb2_grpc.add_CAServicer_to_server(servicer, server)
    port = add_port(server)
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


async def static_source(svid: Svid) -> SvidSource:
    source = SvidSource(lambda: svid)
    await source.start()
    return source


async def served_certificate(port: int, ca: SentryCA) -> x509.Certificate:
    """The leaf a new TLS connection to ``127.0.0.1:port`` is shown (chain verified to ``ca``)."""
    context = ssl.create_default_context(cadata=ca.anchors_pem.decode())
    context.check_hostname = False
    context.set_alpn_protocols(["h2", "http/1.1"])
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="")
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der)
    finally:
        writer.close()
