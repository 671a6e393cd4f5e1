"""The process contract of every launcher, on real subprocesses with an empty environment."""

from __future__ import annotations

import json
import signal
import urllib.request

import pytest

from tests.integration.launchers import (
    free_port,
    http_status,
    run,
    started,
    started_healthy,
    wait_for_status,
)

COMPONENTS = ["placement", "sentry", "injector", "operator"]
LAUNCHERS = ["daprplane", *(f"daprplane-{name}" for name in COMPONENTS)]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_help_works_with_an_empty_environment(launcher: str) -> None:
    result = run(launcher, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


@pytest.mark.parametrize("component", COMPONENTS)
def test_unknown_flag_prints_usage_and_exits_2(component: str) -> None:
    result = run(f"daprplane-{component}", "--no-such-flag")
    assert result.returncode == 2
    assert "Usage:" in result.stderr and "--no-such-flag" in result.stderr


@pytest.mark.parametrize("component", COMPONENTS)
def test_component_help_lists_shared_and_own_flags(component: str) -> None:
    out = run("daprplane", component, "-h").stdout
    for flag in ("--log-level", "--healthz-port", "--metrics-listen-address", "--port"):
        assert flag in out


def test_version_names_the_ring_implementation() -> None:
    result = run("daprplane", "version")
    assert result.returncode == 0
    assert "daprplane 0.1.0" in result.stdout
    assert "ring: rust" in result.stdout


def test_plugins_lists_loaded_and_failed_with_reasons() -> None:
    out = run("daprplane", "plugins").stdout
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "loaded" in lines["placement"]
    assert "loaded" in lines["sample"] and "daprplane-sample 1.0.0" in lines["sample"]
    assert "failed" in lines["sample-broken"] and "ImportError" in lines["sample-broken"]


def test_disabled_component_launcher_says_why() -> None:
    result = run("daprplane-sentry", env={"DAPRPLANE_DISABLE_PLUGINS": "sentry"})
    assert result.returncode == 1
    assert "sentry component is not available" in result.stderr
    assert "DAPRPLANE_DISABLE_PLUGINS" in result.stderr


def test_missing_extra_exits_1_naming_the_extra() -> None:
    result = run("daprplane", "sample-needs-extra", "--healthz-port", str(free_port()))
    assert result.returncode == 1
    # A third party's component names its own distribution, not daprplane.
    assert "pip install 'daprplane-sample[sample-extra]'" in result.stdout
    assert "daprplane_sample_missing_module" in result.stdout


def test_fatal_error_is_one_log_line_and_exit_1() -> None:
    result = run(
        "daprplane",
        "sample-fatal",
        "--log-as-json",
        "--healthz-port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
    )
    assert result.returncode == 1
    fatal = [json.loads(line) for line in result.stdout.splitlines() if '"fatal"' in line]
    assert [line["msg"] for line in fatal] == ["sample failure requested"]
    assert "Traceback" not in result.stdout + result.stderr


def test_invalid_log_level_is_fatal() -> None:
    result = run("daprplane", "sample", "--log-level=loud")
    assert result.returncode == 1
    assert "invalid value for --log-level: loud" in result.stderr


def test_port_in_use_is_fatal() -> None:
    port = free_port()
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        result = run(
            "daprplane",
            "sample",
            f"--healthz-port={port}",
            "--healthz-listen-address=127.0.0.1",
            "--enable-metrics=false",
        )
    assert result.returncode == 1
    assert f"failed to start healthz server on 127.0.0.1:{port}" in result.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_healthz_and_metrics_then_stops_gracefully(signum: signal.Signals) -> None:
    healthz, metrics = free_port(), free_port()
    with started(
        "daprplane",
        "sample",
        "-healthz-port",
        str(healthz),
        "--healthz-listen-address=127.0.0.1",
        f"--metrics-port={metrics}",
        "-metrics-listen-address=127.0.0.1",
        "--startup-delay=1500ms",
        "--greeting",
        "hi there",
        "--shout",
    ) as process:
        # Not ready while the component is still starting: 503, then 200.
        wait_for_status(f"http://127.0.0.1:{healthz}/healthz", 503)
        wait_for_status(f"http://127.0.0.1:{healthz}/healthz", 200)
        with urllib.request.urlopen(f"http://127.0.0.1:{healthz}/sample") as response:
            assert json.load(response) == {"greeting": "hi there", "ready": True}
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics") as response:
            exposition = response.read().decode()
        assert "# TYPE process_resident_memory_bytes gauge" in exposition
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    assert "sample shut down gracefully" in out


def test_metrics_can_be_disabled() -> None:
    healthz, metrics = free_port(), free_port()
    with started_healthy(
        "daprplane",
        "sample",
        f"--healthz-port={healthz}",
        f"--metrics-port={metrics}",
        "--enable-metrics=false",
        healthz_port=healthz,
    ) as process:
        assert http_status(f"http://127.0.0.1:{metrics}/") is None
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        assert process.returncode == 0
