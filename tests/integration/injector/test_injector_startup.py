"""Start-up failures of the launcher that need no cluster: one fatal line, exit 1."""

from __future__ import annotations

import os

import pytest

from tests.integration.launchers import free_port, run


def start(env: dict[str, str]) -> tuple[int, str]:
    result = run(
        "daprplane-injector",
        f"--healthz-port={free_port()}",
        f"--metrics-port={free_port()}",
        f"--port={free_port()}",
        env=env,
    )
    return result.returncode, result.stdout + result.stderr


def fatal_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "level=fatal" in line]


def test_missing_sidecar_image_exits_1() -> None:
    code, output = start({"NAMESPACE": "dapr-system"})
    assert code == 1
    (line,) = fatal_lines(output)
    assert "SIDECAR_IMAGE" in line
    assert "Traceback" not in output


def test_bad_allowed_service_account_pattern_exits_1() -> None:
    code, output = start(
        {
            "NAMESPACE": "dapr-system",
            "SIDECAR_IMAGE": "daprd",
            "DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK": "true",
            "ALLOWED_SERVICE_ACCOUNTS": "ns-[:name",
        }
    )
    assert code == 1
    (line,) = fatal_lines(output)
    assert "ns-[:name" in line


@pytest.mark.skipif(os.geteuid() != 0, reason="the check only refuses UID 0")
def test_root_is_refused_without_the_opt_out() -> None:
    code, output = start({"NAMESPACE": "dapr-system", "SIDECAR_IMAGE": "daprd"})
    assert code == 1
    (line,) = fatal_lines(output)
    assert "current user UID(0) is root" in line


def test_no_kube_configuration_exits_1() -> None:
    code, output = start(
        {
            "NAMESPACE": "dapr-system",
            "SIDECAR_IMAGE": "daprd",
            "DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK": "true",
        }
    )
    assert code == 1
    (line,) = fatal_lines(output)
    assert "kubeconfig" in line or "in-cluster" in line
