"""Sentry's fatal start-up errors name their stage as Dapr's do, and end the process at once.

Dapr's sentry prefixes each fatal line with the stage that failed: ``Invalid options: ``,
``loading default config. …``, ``error creating CA: ``, ``error creating security: ``,
``error running Sentry: ``, and its credentials watcher's ``failed to add target …``. Each test
starts the real launcher with an empty environment and reads its one fatal log line.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.integration.launchers import fatal_message, free_port, run
from tests.k8s.cluster import KubeCluster


def start(tmp_path: Path, *args: str, config: str = "", env: dict[str, str] | None = None) -> Any:
    creds = tmp_path / "creds"
    creds.mkdir(exist_ok=True)
    (tmp_path / "config.yaml").write_text(config)
    return run(
        "daprplane-sentry",
        f"--config={tmp_path / 'config.yaml'}",
        f"--issuer-credentials={creds}",
        f"--healthz-port={free_port()}",
        f"--metrics-port={free_port()}",
        "--log-as-json",
        *args,
        env=env,
        timeout=60,
    )


def test_an_unusable_jwks_source_ends_sentry_with_the_run_stage(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there: the first fetch is refused
    config = (
        "spec:\n  mtls:\n    tokenValidators:\n    - name: jwks\n      options:\n"
        f"        source: http://127.0.0.1:{closed}/jwks.json\n"
    )
    message = fatal_message(start(tmp_path, f"--port={free_port()}", config=config))
    assert message.startswith("error running Sentry: ")
    assert f"http://127.0.0.1:{closed}/jwks.json" in message


def test_a_taken_grpc_port_is_the_run_stage(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        message = fatal_message(start(tmp_path, f"--port={port}"))
    assert message.startswith(f"error running Sentry: could not listen on port {port}: ")


def test_a_missing_credentials_directory_is_the_watcher_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    message = fatal_message(
        start(tmp_path, f"--port={free_port()}", f"--issuer-credentials={missing}")
    )
    assert message == f"failed to add target {missing}: no such file or directory"
    assert not missing.exists()  # nothing was generated or written


def test_an_unusable_ca_is_the_ca_stage(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    for name in ("ca.crt", "issuer.crt", "issuer.key"):
        (creds / name).write_text("garbage\n")
    message = fatal_message(start(tmp_path, f"--port={free_port()}"))
    assert message.startswith("error creating CA: ")


@pytest.mark.parametrize(
    ("args", "prefix"),
    [
        (["--mode=cloud"], "Invalid options: "),
        (["--config=/nonexistent/sentry.yaml"], "loading default config. "),
    ],
)
def test_options_and_configuration_stages(tmp_path: Path, args: list[str], prefix: str) -> None:
    assert fatal_message(start(tmp_path, f"--port={free_port()}", *args)).startswith(prefix)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only meaningful when run as root"
)
def test_root_in_kubernetes_mode_is_the_security_stage(
    tmp_path: Path, kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any
) -> None:
    from tests.integration.operator.crds import install_crds
    from tests.k8s.cluster import raw_request

    install_crds(kube_api)
    configuration = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Configuration",
        "metadata": {"name": "daprsystem"},
        "spec": {"mtls": {"enabled": True}},
    }
    path = f"/apis/dapr.io/v1alpha1/namespaces/{kube_namespace}/configurations"
    raw_request(kube_api, "POST", path, body=configuration)
    result = start(
        tmp_path,
        "--mode=kubernetes",
        "--config=daprsystem",  # the last value wins: the Configuration's name, not the file
        f"--kubeconfig={kube_cluster.kubeconfig}",
        f"--port={free_port()}",
        env={"NAMESPACE": kube_namespace},
    )
    assert fatal_message(result) == (
        "error creating security: current user UID(0) is root. Dapr must be run as a non-root "
        "user in Kubernetes environments. To override this check, set the environment variable "
        "'DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK=true'"
    )
