"""``daprplane up`` and ``daprplane status`` on this machine, as real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.launchers import script
from tests.integration.local.up_process import (
    UpProcess,
    status,
    status_json,
    user_environ,
    wait_dead,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def test_up_runs_sentry_and_placement_until_ctrl_c(state_dir: Path) -> None:
    up = UpProcess.start(state_dir)
    up.wait_up()
    output = up.output()
    assert "CA created" in output
    assert f"127.0.0.1:{up.sentry_port}" in output
    pids = up.child_pids()
    assert set(pids) == {"sentry", "placement"}

    code, report = status_json(state_dir)
    assert code == 0, report
    assert report["ok"] is True
    by_name = {c["name"]: c for c in report["components"]}
    assert by_name["sentry"]["healthy"] and by_name["placement"]["healthy"]
    assert by_name["placement"]["details"]["leader"] == "yes"
    assert by_name["placement"]["details"]["address"] == f"127.0.0.1:{up.placement_port}"
    expiries = {c["name"]: c["expires"] for c in report["certificates"]}
    assert "in 364 days" in expiries["root (anchors)"]

    assert up.stop(signal.SIGINT) == 0
    output = up.output()
    assert "placement  stopped" in output and "sentry     stopped" in output
    assert output.index("placement  stopped") < output.index("sentry     stopped")
    assert all(wait_dead(pid, timeout=1) for pid in pids.values())
    assert not (state_dir / "up.json").exists()

    code, text = status(state_dir)
    assert code == 1
    assert "nothing is running" in text


def test_the_ca_survives_a_restart(state_dir: Path) -> None:
    first = UpProcess.start(state_dir)
    first.wait_up()
    anchors = (state_dir / "certs" / "ca.crt").read_bytes()
    assert first.stop(signal.SIGTERM) == 0

    second = UpProcess.start(state_dir)
    second.wait_up()
    assert "CA kept" in second.output()
    assert (state_dir / "certs" / "ca.crt").read_bytes() == anchors
    assert second.stop() == 0


def test_one_up_per_state_directory(state_dir: Path) -> None:
    up = UpProcess.start(state_dir)
    up.wait_up()
    second = UpProcess.start(state_dir)
    assert second.popen.wait(timeout=30) == 1
    assert "another daprplane up is running" in second.output()
    assert up.stop() == 0


def test_a_port_in_use_is_refused_before_anything_starts(state_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = subprocess.run(
            [script("daprplane"), "up", f"--placement-port={port}"],
            env=user_environ(state_dir),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert completed.returncode == 1
    assert f"port {port} for placement is in use" in completed.stderr
    assert "--placement-port" in completed.stderr
    assert not (state_dir / "logs").exists()


def test_a_component_that_dies_stops_the_rest(state_dir: Path) -> None:
    up = UpProcess.start(state_dir)
    up.wait_up()
    pids = up.child_pids()
    os.kill(pids["placement"], signal.SIGKILL)
    assert up.popen.wait(timeout=30) == 1
    output = up.output()
    assert "placement  exited unexpectedly with code -9" in output
    assert "last lines of" in output
    assert wait_dead(pids["sentry"])


def test_killing_up_takes_its_components_with_it(state_dir: Path) -> None:
    up = UpProcess.start(state_dir)
    up.wait_up()
    pids = up.child_pids()
    up.popen.kill()
    up.popen.wait()
    assert all(wait_dead(pid) for pid in pids.values()), "components outlived a killed up"
    code, text = status(state_dir)
    assert code == 1
    assert "stale record" in text


def test_status_reports_a_dead_component(state_dir: Path) -> None:
    up = UpProcess.start(state_dir)
    up.wait_up()
    pids = up.child_pids()
    # Stop the supervisor from noticing: freeze it, then kill sentry.
    up.popen.send_signal(signal.SIGSTOP)
    try:
        os.kill(pids["sentry"], signal.SIGKILL)
        wait_dead(pids["sentry"])
        code, report = status_json(state_dir)
    finally:
        up.popen.send_signal(signal.SIGCONT)
    assert code == 1
    sentry = next(c for c in report["components"] if c["name"] == "sentry")
    assert sentry["running"] is False
    assert report["ok"] is False
    assert up.popen.wait(timeout=30) == 1


def test_python_m_daprplane_is_the_daprplane_command(state_dir: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "daprplane", "up", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=user_environ(state_dir),
    )
    assert completed.returncode == 0, completed.stderr
    assert "--sentry-port" in completed.stdout and "--state-dir" in completed.stdout
