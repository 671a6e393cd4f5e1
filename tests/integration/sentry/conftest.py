"""A real sentry, started by its launcher with an empty environment.

:func:`run_sentry` is shared by every test that needs one (the identity library's tests
import it too); the ``sentry`` fixture is one default standalone sentry per module.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.launchers import LoopbackPorts, metric_samples, started_healthy
from tests.k8s.cluster import raw_request

#: Where sentry in kubernetes mode publishes the trust anchors (a ConfigMap and a Secret).
TRUST_BUNDLE = "dapr-trust-bundle"


@dataclass
class SentryProcess:
    process: subprocess.Popen[str]
    port: int
    healthz_port: int
    metrics_port: int
    credentials: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def trust_anchors(self) -> bytes:
        return (self.credentials / "ca.crt").read_bytes()

    def metrics(self) -> dict[str, float]:
        """The ``dapr_sentry_*`` samples, by name with labels."""
        return metric_samples(self.metrics_port, "dapr_sentry_")

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        return self.process.returncode, out


def sentry_configuration(workload_cert_ttl: str, allowed_clock_skew: str) -> str:
    """A ``daprsystem`` Configuration file for sentry with these mTLS durations (Go syntax)."""
    return f"""\
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprsystem
spec:
  mtls:
    workloadCertTTL: {workload_cert_ttl}
    allowedClockSkew: {allowed_clock_skew}
"""


@contextlib.contextmanager
def run_sentry(
    credentials: Path, *args: str, env: dict[str, str] | None = None, config: str = ""
) -> Iterator[SentryProcess]:
    """Start ``daprplane-sentry`` (standalone unless ``args`` say otherwise) on free loopback
    ports, with ``config`` as its Configuration file and ``credentials`` as its CA directory;
    wait until it is healthy."""
    credentials.mkdir(parents=True, exist_ok=True)
    config_path = credentials.parent / f"{credentials.name}-config.yaml"
    config_path.write_text(config)
    ports = LoopbackPorts()
    with started_healthy(
        "daprplane-sentry",
        f"--config={config_path}",
        f"--issuer-credentials={credentials}",
        *ports.flags(),
        *args,
        healthz_port=ports.healthz,
        env=env,
        timeout=20,
    ) as process:
        yield SentryProcess(process, ports.port, ports.healthz, ports.metrics, credentials)


def published_anchors(api: Any, namespace: str, timeout: float = 30.0) -> bytes:
    """``ca.crt`` of the ``dapr-trust-bundle`` ConfigMap, once a sentry in kubernetes mode has
    written it."""
    deadline = time.monotonic() + timeout
    path = f"/api/v1/namespaces/{namespace}/configmaps/{TRUST_BUNDLE}"
    while True:
        data = raw_request(api, "GET", path).get("data") or {}
        if data.get("ca.crt"):
            return str(data["ca.crt"]).encode()
        if time.monotonic() > deadline:
            raise AssertionError(f"sentry published no ca.crt in ConfigMap {TRUST_BUNDLE}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def sentry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentryProcess]:
    with run_sentry(tmp_path_factory.mktemp("sentry") / "credentials") as process:
        yield process
