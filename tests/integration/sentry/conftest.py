"""A real sentry, started by its launcher with an empty environment.

:func:`run_sentry` is shared by every test that needs one (the identity library's tests
import it too); the ``sentry`` fixture is one default standalone sentry per module.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.launchers import free_port, started, wait_for_status


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
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            if line.startswith("dapr_sentry_"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        return self.process.returncode, out


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
    port, healthz, metrics = free_port(), free_port(), free_port()
    with started(
        "daprplane-sentry",
        f"--config={config_path}",
        f"--issuer-credentials={credentials}",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        f"--healthz-port={healthz}",
        f"--metrics-port={metrics}",
        *args,
        env=env or {},
    ) as process:
        try:
            wait_for_status(f"http://127.0.0.1:{healthz}/healthz", 200, timeout=20)
        except AssertionError:
            process.kill()
            out, err = process.communicate(timeout=10)
            raise AssertionError(f"sentry did not become healthy:\n{out}\n{err}") from None
        yield SentryProcess(process, port, healthz, metrics, credentials)


@pytest.fixture(scope="module")
def sentry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentryProcess]:
    with run_sentry(tmp_path_factory.mktemp("sentry") / "credentials") as process:
        yield process
