"""Control-plane processes for the benchmarks: free ports, health polling, and sentry.

The launchers next to this Python are started by absolute path with an explicit environment, so
a benchmark measures the installed package and nothing from the caller's shell leaks in.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def launcher(name: str, extra: str = "all") -> str:
    """The absolute path of the ``name`` launcher installed with this Python."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise SystemExit(f"{path} not found: install daprplane[{extra}] into this Python")
    return str(path)


class Process:
    """A child process whose output goes to ``log``, in ``/``."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log_path = name, log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                args, env=env, cwd="/", stdout=out, stderr=subprocess.STDOUT
            )

    def wait_healthy(self, url: str, timeout: float = 60) -> None:
        """Polls ``url`` until it answers 200; stops the process and exits with its log when it
        dies or ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while not healthy(url):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"{self.name} did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class SentryServer(Process):
    """``daprplane-sentry`` in standalone mode (generated CA, insecure validator) serving on
    ``127.0.0.1:port``. Its files are in ``directory``: an empty ``config.yaml``,
    ``credentials/`` (the CA; ``ca.crt`` is the trust anchors) and ``sentry.log``. ``args`` are
    extra flags. Call :meth:`wait_healthy` with :attr:`healthz` before using it."""

    def __init__(
        self, directory: Path, port: int, *args: str, env: dict[str, str], extra: str = "all"
    ) -> None:
        executable = launcher("daprplane-sentry", extra)
        directory.mkdir(exist_ok=True)
        self.credentials = directory / "credentials"
        self.credentials.mkdir()
        (directory / "config.yaml").write_text("")
        healthz = free_port()
        self.healthz = f"http://127.0.0.1:{healthz}/healthz"
        super().__init__(
            "sentry",
            [
                executable,
                f"--config={directory / 'config.yaml'}",
                f"--issuer-credentials={self.credentials}",
                f"--port={port}",
                "--listen-address=127.0.0.1",
                f"--healthz-port={healthz}",
                f"--metrics-port={free_port()}",
                *args,
            ],
            env,
            directory / "sentry.log",
        )

    @property
    def trust_anchors_file(self) -> Path:
        return self.credentials / "ca.crt"
