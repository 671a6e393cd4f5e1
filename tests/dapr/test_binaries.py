"""Dapr's own binaries: where they come from (cache, overrides) and that the real ones run.

The fast tests replace the Go build with a stand-in that writes small scripts, so they check the
caching, locking and override rules without a toolchain. The slow tests build (or reuse) the real
binaries and check each one starts and reports the pinned Dapr release.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.dapr import binaries

_DAPR_RELEASE = binaries.dapr_version().removeprefix("v")
# Room for a cold build inside the test run when nothing built the binaries beforehand.
_BUILD_TIMEOUT = pytest.mark.timeout(3600)


def _write_executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


class _FakeBuild:
    """Stands in for ``binaries.build``: records what was asked and writes scripts instead."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.calls: list[tuple[str, ...]] = []
        self._seconds = seconds
        self._lock = threading.Lock()

    def __call__(self, dest: Path, names: Sequence[str] = binaries.BINARIES) -> float:
        with self._lock:
            self.calls.append(tuple(names))
        time.sleep(self._seconds)
        for name in names:
            _write_executable(dest / name)
        return self._seconds


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private cache root and no user overrides; returns the cache root."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(binaries.DAPRD_ENV, raising=False)
    monkeypatch.delenv(binaries.BINARIES_ENV, raising=False)
    return tmp_path / "cache" / "daprplane" / "dapr"


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> _FakeBuild:
    fake = _FakeBuild()
    monkeypatch.setattr(binaries, "build", fake)
    return fake


def test_pinned_version_and_cache_key_shape() -> None:
    assert binaries.dapr_version() == "v1.18.3"
    key = binaries.cache_key()
    assert key.startswith("v1.18.3-")
    assert len(key.split("-")[-1]) == 10
    assert key == binaries.cache_key()


def test_cache_root_follows_xdg_cache_home(isolated: Path) -> None:
    assert binaries.cache_root() == isolated


def test_builds_only_what_is_missing_then_reuses(fake_build: _FakeBuild, isolated: Path) -> None:
    first = binaries.ensure_binaries(["placement"])
    assert first == isolated / binaries.cache_key()
    assert fake_build.calls == [("placement",)]

    assert binaries.ensure_binaries(["placement"]) == first
    assert fake_build.calls == [("placement",)]

    assert binaries.ensure_binaries() == first
    assert fake_build.calls == [("placement",), ("daprd", "operator", "sentry", "injector")]
    assert binaries.binary("sentry") == first / "sentry"
    assert len(fake_build.calls) == 2


def test_concurrent_callers_share_one_build(
    monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    fake = _FakeBuild(seconds=0.5)
    monkeypatch.setattr(binaries, "build", fake)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(binaries.ensure_binaries()))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 3
    assert len(set(results)) == 1
    assert fake.calls == [binaries.BINARIES]


def test_prebuilt_directory_is_used_without_building(
    monkeypatch: pytest.MonkeyPatch, fake_build: _FakeBuild, tmp_path: Path
) -> None:
    prebuilt = tmp_path / "prebuilt"
    for name in binaries.BINARIES:
        _write_executable(prebuilt / name)
    monkeypatch.setenv(binaries.BINARIES_ENV, str(prebuilt))
    assert binaries.ensure_binaries() == prebuilt
    assert binaries.binary("operator") == prebuilt / "operator"
    assert fake_build.calls == []


def test_prebuilt_directory_missing_a_binary_is_an_error(
    monkeypatch: pytest.MonkeyPatch, fake_build: _FakeBuild, tmp_path: Path
) -> None:
    prebuilt = tmp_path / "prebuilt"
    _write_executable(prebuilt / "daprd")
    (prebuilt / "sentry").write_text("not executable")
    monkeypatch.setenv(binaries.BINARIES_ENV, str(prebuilt))
    assert binaries.ensure_binaries(["daprd"]) == prebuilt
    with pytest.raises(RuntimeError, match="sentry"):
        binaries.ensure_binaries(["daprd", "sentry"])
    assert fake_build.calls == []


def test_daprd_override_is_linked_beside_the_built_binaries(
    monkeypatch: pytest.MonkeyPatch, fake_build: _FakeBuild, isolated: Path, tmp_path: Path
) -> None:
    own_daprd = _write_executable(tmp_path / "mine" / "daprd", "#!/bin/sh\necho mine\n")
    monkeypatch.setenv(binaries.DAPRD_ENV, str(own_daprd))

    assert binaries.binary("daprd") == own_daprd.resolve()
    assert fake_build.calls == []

    directory = binaries.ensure_binaries(["daprd", "operator"])
    assert fake_build.calls == [("operator",)]
    assert (directory / "daprd").resolve() == own_daprd.resolve()
    built = isolated / binaries.cache_key()
    assert (directory / "operator").resolve() == (built / "operator").resolve()
    assert not (built / "daprd").exists()
    # Asking again reuses the links and builds nothing.
    assert binaries.ensure_binaries(["daprd", "operator"]) == directory
    assert len(fake_build.calls) == 1


def test_daprd_override_must_be_executable(
    monkeypatch: pytest.MonkeyPatch, fake_build: _FakeBuild, tmp_path: Path
) -> None:
    monkeypatch.setenv(binaries.DAPRD_ENV, str(tmp_path / "absent"))
    with pytest.raises(RuntimeError, match=binaries.DAPRD_ENV):
        binaries.binary("daprd")
    assert fake_build.calls == []


def test_unknown_names_are_rejected(fake_build: _FakeBuild) -> None:
    with pytest.raises(ValueError, match="scheduler"):
        binaries.ensure_binaries(["daprd", "scheduler"])
    with pytest.raises(ValueError, match="dashboard"):
        binaries.binary("dashboard")
    assert binaries.main(["nope"]) == 1
    assert fake_build.calls == []


def test_main_prints_the_directory(
    fake_build: _FakeBuild, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert binaries.main(["injector"]) == 0
    assert capsys.readouterr().out.strip() == str(isolated / binaries.cache_key())
    assert fake_build.calls == [("injector",)]


# --- the real binaries -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dapr_dir() -> Path:
    return binaries.ensure_binaries()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _output_until(command: Sequence[str], marker: str, cwd: Path, seconds: float = 20.0) -> str:
    """Run ``command`` until ``marker`` appears in its output (or it exits); always stop it."""
    # A bare environment: no kubeconfig or in-cluster settings that could make a binary
    # reach a real cluster.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd)}
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert process.stdout is not None
    output = b""
    deadline = time.monotonic() + seconds
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while marker.encode() not in output and time.monotonic() < deadline:
                if not selector.select(timeout=deadline - time.monotonic()):
                    continue
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    break
                output += chunk
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    return output.decode(errors="replace")


@pytest.mark.slow
@_BUILD_TIMEOUT
def test_daprd_reports_the_pinned_release(dapr_dir: Path) -> None:
    version = subprocess.run(
        [dapr_dir / "daprd", "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    assert version.stdout.strip() == _DAPR_RELEASE

    build_info = subprocess.run(
        [dapr_dir / "daprd", "--build-info"], capture_output=True, text=True, timeout=30, check=True
    )
    assert f"Version: {_DAPR_RELEASE}" in build_info.stdout.splitlines()
    assert f"Git Version: v{_DAPR_RELEASE}" in build_info.stdout.splitlines()


@pytest.mark.slow
@_BUILD_TIMEOUT
@pytest.mark.parametrize("name", binaries.BINARIES)
def test_help_lists_flags(dapr_dir: Path, name: str) -> None:
    result = subprocess.run([dapr_dir / name, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    output = result.stdout + result.stderr
    assert "Usage of " in output
    assert "-enable-metrics" in output


@pytest.mark.slow
@_BUILD_TIMEOUT
@pytest.mark.parametrize(
    ("name", "args", "banner"),
    [
        ("operator", ["-kubeconfig", "absent-kubeconfig"], "Starting Dapr Operator"),
        ("placement", [], "Starting Dapr Placement Service"),
        ("sentry", [], "Starting Dapr Sentry certificate authority"),
        ("injector", [], "Starting Dapr Sidecar Injector"),
    ],
)
def test_control_plane_banner_names_the_pinned_release(
    dapr_dir: Path, tmp_path: Path, name: str, args: list[str], banner: str
) -> None:
    # Private ports, in case a binary gets as far as listening before it is stopped.
    flag = "-" if name == "operator" else "--"
    ports = [f"{flag}{kind}-port={_free_port()}" for kind in ("healthz", "metrics")]
    ports.append(f"{flag}port={_free_port()}")
    if name == "placement":  # its raft port, 8201 by default
        ports.append(f"--initial-cluster=dapr-placement-0=127.0.0.1:{_free_port()}")
    expected = f"{banner} -- version {_DAPR_RELEASE} -- "
    output = _output_until([str(dapr_dir / name), *args, *ports], expected, tmp_path)
    assert expected in output, output
    # Every log line carries the release too.
    first_line = output.splitlines()[0]
    assert f"ver={_DAPR_RELEASE}" in first_line
