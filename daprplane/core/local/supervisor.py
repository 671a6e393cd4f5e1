"""Child processes of ``daprplane up``: started with logs to files, watched, stopped in order.

Each child runs in its own process group, so a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children newest first (placement before the sentry it gets
certificates from). On Linux each child also asks the kernel for SIGTERM should the supervisor
die without stopping it, so a killed ``up`` leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from daprplane.core.local.plan import ComponentProcess

STOP_TIMEOUT = 15.0
_POLL_INTERVAL = 0.05
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    component: ComponentProcess
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def name(self) -> str:
        return self.component.name

    def exit_code(self) -> int | None:
        return self.popen.poll()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class ChildExited(Exception):
    def __init__(self, child: Child) -> None:
        super().__init__(f"{child.name} exited with code {child.exit_code()}")
        self.child = child


class NotReady(Exception):
    pass


def fetch(url: str, timeout: float = 2.0) -> bytes | None:
    """The body of a 200 answer to GET ``url``; ``None`` for any other answer or none."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return bytes(answer.read()) if int(answer.status) == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def healthy(port: int, host: str) -> bool:
    return fetch(f"http://{host}:{port}/healthz") is not None


class Supervisor:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.children: list[Child] = []
        self.environ = dict(os.environ if environ is None else environ)
        self.stop_requested = threading.Event()

    def start(self, component: ComponentProcess, log: Path) -> Child:
        with log.open("ab") as output:
            popen = subprocess.Popen(
                list(component.argv),
                env={**self.environ, **component.environ},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        child = Child(component, popen, log)
        self.children.append(child)
        return child

    def wait_ready(self, child: Child, host: str, timeout: float) -> float:
        """Seconds until ``child``'s /healthz answered 200; raises if it exits or times out."""
        started = time.monotonic()
        deadline = started + timeout
        while not self.stop_requested.is_set():
            if child.exit_code() is not None:
                raise ChildExited(child)
            if healthy(child.component.healthz_port, host):
                return time.monotonic() - started
            if time.monotonic() > deadline:
                raise NotReady(f"{child.name} was not ready within {timeout:.0f}s")
            self.stop_requested.wait(_POLL_INTERVAL)
        raise NotReady(f"stopped while waiting for {child.name}")

    def watch(self) -> Child | None:
        """Block until a stop is requested (``None``) or a child exits (that child)."""
        while not self.stop_requested.wait(0.2):
            for child in self.children:
                if child.exit_code() is not None:
                    return child
        return None

    def stop_all(
        self, on_stopped: Callable[[Child, int | None], None], timeout: float = STOP_TIMEOUT
    ) -> None:
        """SIGTERM each running child, newest first; kill one that outlives ``timeout``."""
        for child in reversed(self.children):
            if child.exit_code() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.popen.send_signal(signal.SIGTERM)
                try:
                    child.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    child.popen.kill()
                    child.popen.wait()
                    on_stopped(child, None)
                    continue
            on_stopped(child, child.exit_code())
