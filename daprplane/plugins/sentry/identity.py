"""Sentry's own serving identity: an Ed25519 leaf ``spiffe://<td>/ns/<ns>/dapr-sentry`` signed in
process by the current issuer, renewed at half-life and whenever the CA changes.

The gRPC server reads it through ``grpc.dynamic_ssl_server_credentials``: gRPC asks the fetcher
for a new certificate configuration on each handshake, so a renewal takes effect on the next
connection without restarting the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from daprplane.core.security.spiffe import SpiffeId
from daprplane.plugins.sentry.ca import pem, sign_workload
from daprplane.plugins.sentry.metrics import SentryMetrics
from daprplane.plugins.sentry.server import Authority

log = logging.getLogger("dapr.sentry.identity")

#: How long to wait before trying again after a failed renewal (Dapr's client retries every 10s).
RETRY_INTERVAL = 10.0


@dataclass(frozen=True)
class ServingCertificate:
    certificate: x509.Certificate
    key_pem: bytes
    chain_pem: bytes

    @property
    def renew_at(self) -> datetime.datetime:
        start = self.certificate.not_valid_before_utc
        return start + (self.certificate.not_valid_after_utc - start) / 2


class ServingIdentity:
    def __init__(
        self,
        authority: Authority,
        trust_domain: str,
        namespace: str,
        metrics: SentryMetrics,
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        self.authority = authority
        self.spiffe_id = SpiffeId.for_app(trust_domain, namespace, "dapr-sentry")
        self.metrics = metrics
        self.on_ready = on_ready
        self.current: ServingCertificate | None = None
        self._pending: grpc.ServerCertificateConfiguration | None = None
        self._changed = asyncio.Event()

    def issue(self) -> ServingCertificate:
        """Sign a new leaf with the current CA and hand it to the TLS layer."""
        try:
            key = ed25519.Ed25519PrivateKey.generate()
            bundle = self.authority.credentials.bundle
            leaf = sign_workload(
                bundle,
                key.public_key(),
                self.spiffe_id,
                ttl=self.authority.workload_cert_ttl,
                skew=self.authority.allowed_clock_skew,
            )
            serving = ServingCertificate(
                certificate=leaf,
                key_pem=pem.encode_private_key(key),
                chain_pem=pem.encode_chain([leaf]) + bundle.issuer_chain_pem,
            )
        except Exception:
            self.metrics.server_certificate_failed()
            raise
        self.current = serving
        # Read by gRPC's handshake threads; a single attribute swap needs no lock.
        self._pending = self._configuration(serving)
        self.on_ready()
        return serving

    @staticmethod
    def _configuration(serving: ServingCertificate) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(serving.key_pem, serving.chain_pem)])

    def server_credentials(self) -> grpc.ServerCredentials:
        """TLS credentials that always present the latest leaf; no client certificate asked for."""
        if self.current is None:
            self.issue()
        assert self.current is not None
        initial = self._configuration(self.current)
        self._pending = None
        return grpc.dynamic_ssl_server_credentials(
            initial, self._fetch, require_client_authentication=False
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        pending, self._pending = self._pending, None
        return pending

    def reissue_soon(self) -> None:
        """The CA changed: renew now rather than at half-life."""
        self._changed.set()

    async def keep_renewed(self) -> None:
        """Renew at half-life (or when the CA changes), retrying failures every 10 seconds."""
        while True:
            assert self.current is not None
            now = datetime.datetime.now(datetime.UTC)
            delay = max(0.0, (self.current.renew_at - now).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=delay)
            self._changed.clear()
            while True:
                try:
                    serving = self.issue()
                except Exception as error:
                    log.error("Failed to renew sentry's serving certificate: %s", error)
                    await asyncio.sleep(RETRY_INTERVAL)
                    continue
                log.info(
                    "Renewed sentry's serving certificate; valid until %s",
                    serving.certificate.not_valid_after_utc.isoformat(),
                )
                break
