"""The client side of ``dapr.proto.sentry.v1.CA/SignCertificate`` (Dapr ``pkg/security/sentry.go``).

One :meth:`SentryClient.sign` makes a fresh key and CSR, sends them with the token rules of
:mod:`.tokens`, verifies Sentry by the trust anchors and its exact SPIFFE ID
``spiffe://<control-plane-td>/ns/<control-plane-ns>/dapr-sentry``, and checks the response before
trusting it. Transient failures are retried (5 tries, 3 s each); a bound method makes a
:class:`~.rotation.SvidSource` fetch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc

from daprplane._proto.sentry.v1 import sentry_pb2, sentry_pb2_grpc
from daprplane.core.security import tokens
from daprplane.core.security.anchors import TrustAnchorSource
from daprplane.core.security.authz import allow_ids
from daprplane.core.security.csr import KeyAlgorithm, PrivateKey, create_csr, generate_key
from daprplane.core.security.dialer import SpiffeChannel
from daprplane.core.security.spiffe import SpiffeId
from daprplane.core.security.svid import Svid, SvidError, load_pem_chain

log = logging.getLogger("dapr.runtime.security")

RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
# google.protobuf.Timestamp's valid range (Timestamp.CheckValid): 0001-01-01 .. 9999-12-31.
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799


class SentryError(Exception):
    """SignCertificate failed, or Sentry's answer is unusable; the message says which."""


def sentry_id(control_plane_trust_domain: str, control_plane_namespace: str) -> SpiffeId:
    return SpiffeId.for_app(control_plane_trust_domain, control_plane_namespace, "dapr-sentry")


def validate_response(response: sentry_pb2.SignCertificateResponse, key: PrivateKey) -> Svid:
    """The SVID in ``response``, checked as Dapr's client does; ``trust_chain_certificates`` is
    ignored (the trust anchors come from configuration, never from the server)."""
    if not response.HasField("valid_until"):
        raise SentryError("invalid response from sentry: invalid nil Timestamp")
    valid_until = response.valid_until
    if not _MIN_SECONDS <= valid_until.seconds <= _MAX_SECONDS:
        raise SentryError(f"invalid response from sentry: timestamp out of range: {valid_until}")
    if not 0 <= valid_until.nanos < 1_000_000_000:
        raise SentryError("invalid response from sentry: timestamp nanos out of range")
    try:
        certificates = load_pem_chain(response.workload_certificate)
        return Svid.from_chain(certificates, key)
    except SvidError as error:
        raise SentryError(f"invalid workload certificate from sentry: {error}") from None


class SentryClient:
    """Signs this process's identity ``spiffe://<td>/ns/<namespace>/<app_id>`` with Sentry."""

    def __init__(
        self,
        *,
        address: str,
        anchors: TrustAnchorSource,
        app_id: str,
        namespace: str,
        control_plane_trust_domain: str = "localhost",
        control_plane_namespace: str = "default",
        kubernetes_mode: bool = False,
        key_algorithm: KeyAlgorithm = KeyAlgorithm.ED25519,
        jwt_audiences: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
        token_loader: Callable[[], tokens.SentryToken] | None = None,
        tries: int = 5,
        per_try_timeout: float = 3.0,
        retry_backoff: float = 0.05,
    ) -> None:
        self.address = address
        self.anchors = anchors
        self.requested_id = tokens.requested_id(app_id, environ)
        self.namespace = namespace
        self.trust_domain = tokens.requested_trust_domain(
            self.requested_id,
            namespace,
            control_plane_namespace=control_plane_namespace,
            control_plane_trust_domain=control_plane_trust_domain,
        )
        self.sentry_id = sentry_id(control_plane_trust_domain, control_plane_namespace)
        self.key_algorithm = key_algorithm
        self.jwt_audiences = list(jwt_audiences)
        self._load_token = token_loader or (
            lambda: tokens.load_token(kubernetes_mode=kubernetes_mode, environ=environ)
        )
        self.tries = tries
        self.per_try_timeout = per_try_timeout
        self.retry_backoff = retry_backoff

    def request(self, csr_pem: bytes) -> sentry_pb2.SignCertificateRequest:
        token = self._load_token()
        return sentry_pb2.SignCertificateRequest(
            id=self.requested_id,
            token=token.token,
            trust_domain=self.trust_domain,
            namespace=self.namespace,
            certificate_signing_request=csr_pem,
            token_validator=token.validator,  # type: ignore[arg-type]
            jwt_audiences=self.jwt_audiences,
        )

    async def sign(self) -> Svid:
        key = generate_key(self.key_algorithm)
        request = self.request(create_csr(key))
        response = await self._call(request)
        return validate_response(response, key)

    async def _call(self, request: sentry_pb2.SignCertificateRequest) -> Any:
        failure = "no attempt made"
        for attempt in range(1, self.tries + 1):
            # A fresh dial per try: a channel that failed to connect would otherwise wait out
            # gRPC's reconnect backoff and fail the remaining tries at once.
            connection = SpiffeChannel(
                self.address, anchors=self.anchors, authorize=allow_ids(self.sentry_id)
            )
            try:
                async with connection as channel:
                    stub = sentry_pb2_grpc.CAStub(channel)  # type: ignore[no-untyped-call]
                    return await stub.SignCertificate(request, timeout=self.per_try_timeout)
            except grpc.aio.AioRpcError as error:
                code = error.code()
                reason = connection.last_error if code is grpc.StatusCode.UNAVAILABLE else None
                failure = f"{code.name}: {reason or error.details()}"
                if code not in RETRYABLE:
                    break
            log.debug("SignCertificate try %d/%d failed: %s", attempt, self.tries, failure)
            if attempt < self.tries:
                await asyncio.sleep(self.retry_backoff * attempt)
        raise SentryError(f"error from sentry SignCertificate: {failure}")


async def sign(**options: Any) -> Svid:
    """One-shot :meth:`SentryClient.sign`; takes :class:`SentryClient`'s keyword arguments."""
    return await SentryClient(**options).sign()
