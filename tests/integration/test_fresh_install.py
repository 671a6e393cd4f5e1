"""The wheel in virtualenvs of its own, as a user installs it: first without extras, then with
``[all]`` and the README's first command.

Needs the wheel the test session built (``$DAPRPLANE_WHEEL``, set by ``nox -s tests``) and the
package index for the dependencies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.launchers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

INSTALL_TIMEOUT = 420


@pytest.fixture(scope="module")
def wheel() -> Path:
    path = os.environ.get("DAPRPLANE_WHEEL", "")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("DAPRPLANE_WHEEL is not set: nox -s tests sets it to the wheel it built")
        pytest.skip("no wheel to install (nox -s tests builds one and sets DAPRPLANE_WHEEL)")
    assert Path(path).is_file(), path
    return Path(path)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run(["python3.11", "-m", "venv", str(directory)], check=True, timeout=120)
    yield directory / "bin"


def _run(bin_dir: Path, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # A user's shell: the venv's scripts on PATH, nothing else of this test run's environment.
    environ = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        [str(bin_dir / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        cwd="/",
    )


def _pip_install(bin_dir: Path, requirement: str) -> None:
    result = _run(
        bin_dir, "python", "-m", "pip", "install", "--quiet", requirement, timeout=INSTALL_TIMEOUT
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_extras_every_launcher_names_its_extra(venv: Path, wheel: Path) -> None:
    _pip_install(venv, str(wheel))
    version = _run(venv, "daprplane", "version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("daprplane ")
    for component in ("sentry", "placement", "injector", "operator"):
        launcher = _run(venv, f"daprplane-{component}")
        assert launcher.returncode == 1, (component, launcher.stdout, launcher.stderr)
        output = launcher.stdout + launcher.stderr
        assert f"pip install 'daprplane[{component}]'" in output, output
        assert "Traceback" not in output, output
    up = _run(venv, "daprplane", "up")
    assert up.returncode == 1
    assert "pip install 'daprplane[sentry]'" in up.stderr, up.stderr
    # An offline calculation needs no extra at all.
    simulate = _run(venv, "daprplane", "placement", "simulate", "--hosts", "3", "--actors", "300")
    assert simulate.returncode == 0, simulate.stderr


def test_the_readme_command_runs_the_control_plane(venv: Path, wheel: Path, tmp_path: Path) -> None:
    _pip_install(venv, f"{wheel}[all]")
    state = tmp_path / "state"
    output = tmp_path / "up.out"
    with output.open("w") as sink:
        up = subprocess.Popen(
            [
                str(venv / "python"),
                "-m",
                "daprplane",
                "up",
                f"--state-dir={state}",
                f"--sentry-port={free_port()}",
                f"--placement-port={free_port()}",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={"PATH": f"{venv}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")},
            cwd="/",
        )
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C stops everything" not in output.read_text():
            assert up.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.1)
        assert (state / "certs" / "ca.crt").is_file()
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=60)
    assert code == 0, output.read_text()
