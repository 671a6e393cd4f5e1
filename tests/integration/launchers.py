"""Start our launchers the way Kubernetes does: by absolute path, with an empty environment.

:func:`started_healthy` is the usual way in: it starts a launcher on the ports of a
:class:`LoopbackPorts` and returns once its ``/healthz`` answers 200, failing with the process's
output if it exits or never gets there.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def script(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is not installed next to {sys.executable}"
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(
    name: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script(name), *args],
        env=dict(env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
    )


def fatal_message(result: subprocess.CompletedProcess[str]) -> str:
    """The message of the one fatal line a launcher logged (``--log-as-json``) before exiting 1,
    with no traceback anywhere."""
    assert result.returncode == 1, result.stdout + result.stderr
    fatal = [json.loads(line)["msg"] for line in result.stdout.splitlines() if '"fatal"' in line]
    assert len(fatal) == 1, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    return str(fatal[0])


@dataclass(frozen=True)
class LoopbackPorts:
    """Free ports for a launcher's server, healthz and metrics listeners, all on loopback."""

    port: int = field(default_factory=free_port)
    healthz: int = field(default_factory=free_port)
    metrics: int = field(default_factory=free_port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def healthz_url(self) -> str:
        return f"http://127.0.0.1:{self.healthz}/healthz"

    def flags(self) -> list[str]:
        return [
            f"--port={self.port}",
            "--listen-address=127.0.0.1",
            f"--healthz-port={self.healthz}",
            "--healthz-listen-address=127.0.0.1",
            f"--metrics-port={self.metrics}",
            "--metrics-listen-address=127.0.0.1",
        ]


@contextlib.contextmanager
def started(
    name: str, *args: str, env: Mapping[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[str]]:
    """The launcher ``name``, killed afterwards if still running. Its output is piped, or
    written to ``log`` for a long-lived process (a pipe nobody reads would fill up and block
    its logging)."""
    with contextlib.ExitStack() as files:
        output = files.enter_context(log.open("w")) if log else subprocess.PIPE
        process = subprocess.Popen(
            [script(name), *args],
            env=dict(env or {}),
            stdout=output,
            stderr=subprocess.STDOUT if log else subprocess.PIPE,
            text=True,
            cwd="/",
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def http_status(url: str) -> int | None:
    """The status of a GET, or ``None`` while nothing listens."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def metric_samples(port: int, *prefixes: str) -> dict[str, float]:
    """The samples on ``/metrics`` at ``port`` whose names start with one of ``prefixes``,
    keyed by name with labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith(prefixes):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def wait_for_status(url: str, expected: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = http_status(url)
        if status == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"{url} answered {status}, expected {expected} within {timeout}s")


def wait_until_healthy(
    process: subprocess.Popen[Any],
    healthz_port: int,
    *,
    what: str,
    timeout: float = 30,
    output: Callable[[], str] | None = None,
) -> None:
    """Poll ``/healthz`` on ``healthz_port`` until it answers 200. Fails at once if ``process``
    exits, or after ``timeout``, with the process's output: ``output()`` when given (a log
    file), else what it wrote to its pipes (the process is killed to read them)."""
    url = f"http://127.0.0.1:{healthz_port}/healthz"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            problem = f"{what} exited with {process.returncode} before {url} answered 200"
            break
        if http_status(url) == 200:
            return
        if time.monotonic() >= deadline:
            problem = f"{what} not healthy: {url} did not answer 200 within {timeout}s"
            break
        time.sleep(0.1)
    if output is None:
        process.kill()
        out, err = process.communicate(timeout=10)
        text = "".join(
            part.decode(errors="replace") if isinstance(part, bytes) else part
            for part in (out, err)
            if part
        )
    else:
        text = output()
    raise AssertionError(f"{problem}:\n{text}")


@contextlib.contextmanager
def started_healthy(
    name: str,
    *args: str,
    healthz_port: int,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 30,
) -> Iterator[subprocess.Popen[str]]:
    """:func:`started`, then :func:`wait_until_healthy`: the launcher once it is healthy."""
    with started(name, *args, env=env, log=log) as process:
        wait_until_healthy(
            process, healthz_port, what=name, timeout=timeout, output=log.read_text if log else None
        )
        yield process
