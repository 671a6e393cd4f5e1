"""``daprplane up`` as a user runs it: the real console script, output captured, signals sent."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.launchers import free_port, script

# The last line of the summary `up` prints once everything is ready.
READY_LINE = "Ctrl-C stops everything"
START_TIMEOUT = 60.0


def user_environ(state_dir: Path) -> dict[str, str]:
    """What a shell would pass: no PYTHONPATH tricks; the state directory through the env."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DAPRPLANE_HOME": str(state_dir)}


@dataclass
class UpProcess:
    popen: subprocess.Popen[str]
    output_path: Path
    state_dir: Path
    sentry_port: int
    placement_port: int

    @classmethod
    def start(cls, state_dir: Path, *extra: str) -> UpProcess:
        sentry_port, placement_port = free_port(), free_port()
        output_path = state_dir.parent / f"up-{time.monotonic_ns()}.out"
        with output_path.open("w") as output:
            popen = subprocess.Popen(
                [
                    script("daprplane"),
                    "up",
                    f"--sentry-port={sentry_port}",
                    f"--placement-port={placement_port}",
                    *extra,
                ],
                env=user_environ(state_dir),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
                cwd="/",
            )
        return cls(popen, output_path, state_dir, sentry_port, placement_port)

    def output(self) -> str:
        return self.output_path.read_text()

    def wait_for(self, text: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"daprplane up exited ({self.popen.returncode}) before printing {text!r}:\n"
                    f"{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout}s:\n{self.output()}")
            time.sleep(0.05)

    def wait_up(self) -> None:
        self.wait_for(READY_LINE)

    def stop(self, signum: int = signal.SIGINT, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(
                f"daprplane up ignored signal {signum}:\n{self.output()}"
            ) from None

    def record(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "up.json").read_text())  # type: ignore[no-any-return]

    def child_pids(self) -> dict[str, int]:
        return {item["name"]: item["pid"] for item in self.record()["components"]}

    def sidecar_lines(self) -> tuple[str, list[str]]:
        """The printed ``export`` line and the daprd command (continuation lines joined), split."""
        text = self.output().split("Run a self-hosted sidecar", 1)[1]
        lines = [line.strip() for line in text.splitlines()[2:]]
        export = lines[0]
        command: list[str] = []
        for line in lines[1:]:
            command.append(line.removesuffix("\\").strip())
            if not line.endswith("\\"):
                break
        return export, shlex.split(" ".join(command))


def status(state_dir: Path, *args: str) -> tuple[int, str]:
    completed = subprocess.run(
        [script("daprplane"), "status", *args],
        env=user_environ(state_dir),
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    return completed.returncode, completed.stdout + completed.stderr


def status_json(state_dir: Path) -> tuple[int, dict[str, Any]]:
    code, text = status(state_dir, "--json")
    return code, json.loads(text)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes: it only waits for its parent to reap it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def wait_dead(pid: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
