"""The launchers' command-line polish, on real subprocesses with an empty environment."""

from __future__ import annotations

import json

import pytest

from tests.integration.launchers import free_port, run

COMPONENTS = ["placement", "sentry", "injector", "operator"]


def test_version_flag() -> None:
    result = run("daprplane", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("daprplane 0.1.0\nring: rust\n")
    assert result.stdout == run("daprplane", "version").stdout


def test_plugins_has_a_header_row() -> None:
    result = run("daprplane", "plugins")
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["PLUGIN", "STATUS", "DISTRIBUTION", "COMPONENTS", "REASON"]
    assert any(row.split()[:2] == ["placement", "loaded"] for row in rows)
    assert result.stderr == ""


def test_an_unknown_plugin_selection_is_warned_about_on_stderr() -> None:
    result = run("daprplane", "plugins", env={"DAPRPLANE_PLUGINS": "nosuch"})
    assert result.returncode == 0
    warning = result.stderr.strip()
    assert warning.startswith("warning: DAPRPLANE_PLUGINS names plugins that are not installed:")
    assert "nosuch" in warning and "placement" in warning and "sentry" in warning
    # The selection is still honoured: nothing loads.
    rows = result.stdout.splitlines()[1:]
    assert rows and all(row.split()[1] == "disabled" for row in rows)


@pytest.mark.parametrize("component", COMPONENTS)
def test_an_unknown_flag_prints_pflags_line_and_every_flag(component: str) -> None:
    result = run(f"daprplane-{component}", "--x")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "unknown flag: --x"
    assert lines[1].startswith(f"Usage: daprplane-{component} [OPTIONS]")
    for flag in ("--log-level", "--metrics-port PORT", "--healthz-port PORT", "--port PORT"):
        assert flag in result.stderr


def test_help_has_no_empty_tuple_defaults_and_says_ports_alike() -> None:
    for component in COMPONENTS:
        out = run(f"daprplane-{component}", "--help").stdout
        assert "()" not in out, component
        assert "--metrics-port TEXT" not in out


def test_operator_help_says_which_flags_are_ignored() -> None:
    out = " ".join(run("daprplane-operator", "--help").stdout.split())
    assert (
        "--enable-argo-rollout-service-reconciler BOOL Accepted for compatibility and ignored"
        in out
    )
    assert "--cache-sync-period DURATION Accepted for compatibility and ignored" in out
    assert "~/.kube/config" not in out


def test_status_json_with_a_missing_kubeconfig() -> None:
    result = run("daprplane", "status", "--json", "--kubeconfig", "/nonexistent/kubeconfig")
    assert result.returncode == 1
    assert json.loads(result.stdout) == {
        "ok": False,
        "error": "unable to load kubeconfig: stat /nonexistent/kubeconfig: no such file or "
        "directory",
    }


def test_simulate_json_error() -> None:
    result = run("daprplane", "placement", "simulate", "--json", "--scenario", "scale-in:99")
    assert result.returncode == 1
    assert json.loads(result.stdout) == {
        "ok": False,
        "error": "scale-in:99 would remove every one of the 10 hosts",
    }
    assert result.stderr == ""


def test_locate_json_error_and_quiet_verbose_logging() -> None:
    dead = f"127.0.0.1:{free_port()}"
    args = ("placement", "locate", "--address", dead, "--type", "T", "--id", "x", "--timeout", "1s")
    result = run("daprplane", *args, "--json")
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert error["ok"] is False
    assert error["error"].startswith("timed out after 1s waiting for the placement table")

    verbose = run("daprplane", *args, "-v")
    assert verbose.returncode == 1
    lines = verbose.stderr.strip().splitlines()
    assert lines[-1].startswith("error: timed out after 1s")
    logged = [line for line in lines[:-1] if line]
    assert logged, "-v logs the connection attempts"
    for line in logged:
        name = line.split()[1]
        assert name.startswith(("dapr.", "daprplane")), line
        assert not name.startswith(("asyncio", "grpc")), line
