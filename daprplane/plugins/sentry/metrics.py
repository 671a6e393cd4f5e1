"""Sentry's six ``dapr_sentry_*`` series, as Dapr's ``pkg/sentry/monitoring`` exports them.

A custom collector rather than prometheus_client's ``Counter``: Dapr's counters have no
``_created`` companion series, and the failure counter's only label value is ``reason="sign"``.
Every series is typed, and present (at zero) from the start.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class SentryMetrics(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests_received = 0
        self.sign_success = 0
        self.sign_failure = 0
        self.servercert_issue_failed = 0
        self.issuercert_changed = 0
        self.issuercert_expiry: float | None = None

    def register(self, registry: CollectorRegistry) -> SentryMetrics:
        registry.register(self)
        return self

    def request_received(self) -> None:
        with self._lock:
            self.requests_received += 1

    def succeeded(self) -> None:
        with self._lock:
            self.sign_success += 1

    def failed(self) -> None:
        with self._lock:
            self.sign_failure += 1

    def add_counts(self, received: int, succeeded: int, failed: int) -> None:
        """Calls a worker process (:mod:`.worker`) handled since its last report."""
        with self._lock:
            self.requests_received += received
            self.sign_success += succeeded
            self.sign_failure += failed

    def server_certificate_failed(self) -> None:
        with self._lock:
            self.servercert_issue_failed += 1

    def issuer_changed(self) -> None:
        with self._lock:
            self.issuercert_changed += 1

    def issuer_expiry(self, timestamp: float) -> None:
        with self._lock:
            self.issuercert_expiry = timestamp

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            yield CounterMetricFamily(
                "dapr_sentry_cert_sign_request_received",
                "The number of CSRs received.",
                value=self.requests_received,
            )
            yield CounterMetricFamily(
                "dapr_sentry_cert_sign_success",
                "The number of certificates issuances that have succeeded.",
                value=self.sign_success,
            )
            failure = CounterMetricFamily(
                "dapr_sentry_cert_sign_failure",
                "The number of errors occurred when signing the CSR.",
                labels=["reason"],
            )
            failure.add_metric(["sign"], self.sign_failure)
            yield failure
            yield CounterMetricFamily(
                "dapr_sentry_servercert_issue_failed",
                "The number of server TLS certificate issuance failures.",
                value=self.servercert_issue_failed,
            )
            yield CounterMetricFamily(
                "dapr_sentry_issuercert_changed",
                "The number of issuer cert updates, when issuer cert or key is changed",
                value=self.issuercert_changed,
            )
            if self.issuercert_expiry is not None:
                yield GaugeMetricFamily(
                    "dapr_sentry_issuercert_expiry_timestamp",
                    "The unix timestamp, in seconds, when issuer/root cert will expire.",
                    value=self.issuercert_expiry,
                )
