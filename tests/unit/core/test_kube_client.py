"""API server configuration: kubeconfig files, in-cluster config, the ApiClient, root refusal."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daprplane.core.kube import client as kube_client
from daprplane.core.kube.client import KubeConfigError, load_cluster_config
from daprplane.core.security import usergroup
from tests.pki import self_signed

CA = b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"


def _kubeconfig(path: Path, cluster: dict, user: dict, context: str = "ctx") -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
                "current-context": context,
            }
        )
    )
    return path


def test_client_certificate_files_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(CA)
    (tmp_path / "pki" / "client.crt").write_bytes(b"cert")
    (tmp_path / "pki" / "client.key").write_bytes(b"key")
    path = _kubeconfig(
        tmp_path / "config",
        {
            "server": "https://127.0.0.1:6443/",
            "certificate-authority": "pki/ca.crt",
            "tls-server-name": "kubernetes.default.svc",
        },
        {"client-certificate": "pki/client.crt", "client-key": "pki/client.key"},
    )
    config = load_cluster_config(str(path), environ={})
    assert config.host == "https://127.0.0.1:6443"
    assert config.ca_pem == CA
    assert config.tls_server_name == "kubernetes.default.svc"
    assert (config.client_cert_pem, config.client_key_pem) == (b"cert", b"key")
    assert config.verify


def test_inline_data_and_token(tmp_path: Path) -> None:
    path = _kubeconfig(
        tmp_path / "config",
        {
            "server": "https://h:1",
            "certificate-authority-data": base64.b64encode(CA).decode(),
            "insecure-skip-tls-verify": True,
        },
        {"token": "abc"},
    )
    config = load_cluster_config(None, environ={"KUBECONFIG": f"/missing:{path}"})
    assert config.ca_pem == CA and config.token == "abc" and not config.verify


def test_exec_credentials_are_refused(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config", {"server": "https://h:1"}, {"exec": {"command": "x"}})
    with pytest.raises(KubeConfigError, match="exec"):
        load_cluster_config(str(path), environ={})


def test_nothing_configured() -> None:
    with pytest.raises(KubeConfigError, match="KUBERNETES_SERVICE_HOST"):
        load_cluster_config(None, environ={})
    with pytest.raises(KubeConfigError, match="no such file"):
        load_cluster_config("/nowhere/config", environ={})


def test_in_cluster_config_comes_first(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok\n")
    (tmp_path / "ca.crt").write_bytes(CA)
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    config = load_cluster_config("/nowhere/config", environ=env, service_account_dir=str(tmp_path))
    assert config.host == "https://[fd00::1]:443"
    assert config.token_file == str(tmp_path / "token") and config.ca_pem == CA


async def test_token_file_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "token"
    token.write_text("one\n")
    client = kube_client.api_client(
        kube_client.ClusterConfig(host="https://127.0.0.1:1", token_file=str(token))
    )
    try:
        auth = await client.configuration.auth_settings()
        assert auth["BearerToken"]["value"] == "Bearer one"
        token.write_text("two\n")
        monkeypatch.setattr(kube_client, "TOKEN_FILE_REFRESH", 0.0)
        auth = await client.configuration.auth_settings()
        assert auth["BearerToken"]["value"] == "Bearer two"
    finally:
        await client.close()


def test_inline_client_certificate_leaves_no_files(tmp_path: Path) -> None:
    pair = self_signed("me")
    config = kube_client.ClusterConfig(
        host="https://127.0.0.1:1", client_cert_pem=pair.cert_pem, client_key_pem=pair.key_pem
    )
    client = kube_client.api_client(config)
    assert client.configuration.cert_file is None
    assert client.rest_client.ssl_context is not None


def test_works_without_home(tmp_path: Path) -> None:
    """Nothing reads HOME: a process without it (and without PATH) builds a client."""
    path = _kubeconfig(
        tmp_path / "config",
        {"server": "https://127.0.0.1:1", "tls-server-name": "kubernetes"},
        {"token": "t"},
    )
    code = (
        "import os, pwd\n"
        "def no_entry(uid):\n"
        "    raise KeyError(uid)\n"
        "pwd.getpwuid = no_entry  # a UID without a passwd entry, as in many containers\n"
        "from daprplane.core.kube import new_api_client\n"
        "client = new_api_client()\n"
        "assert client.configuration.tls_server_name == 'kubernetes'\n"
        "assert 'HOME' not in os.environ\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"KUBECONFIG": str(path)},
        capture_output=True,
        text=True,
        cwd="/",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("mode", "env", "euid", "refused"),
    [
        ("kubernetes", {}, 0, True),
        ("kubernetes", {"DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK": "true"}, 0, False),
        ("kubernetes", {"DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK": "false"}, 0, True),
        ("kubernetes", {}, 1000, False),
        ("standalone", {}, 0, False),
    ],
)
def test_root_refusal(mode: str, env: dict[str, str], euid: int, refused: bool) -> None:
    if refused:
        with pytest.raises(usergroup.RootUserError) as info:
            usergroup.check_user(mode, env, euid=lambda: euid, platform="linux")
        assert str(info.value) == (
            "current user UID(0) is root. Dapr must be run as a non-root user in Kubernetes "
            "environments. To override this check, set the environment variable "
            "'DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK=true'"
        )
    else:
        usergroup.check_user(mode, env, euid=lambda: euid, platform="linux")


def test_root_allowed_on_windows() -> None:
    usergroup.check_user("kubernetes", {}, euid=lambda: 0, platform="win32")


def test_environment_default_is_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK", "true")
    usergroup.check_user("kubernetes", euid=lambda: 0, platform="linux")
    assert os.environ["DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK"] == "true"
