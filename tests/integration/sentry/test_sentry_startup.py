"""Fatal start-up errors: exit 1 with one line saying what was wrong (contract §1, §2.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.launchers import fatal_message, free_port, run
from tests.pki import ByoCA


def _start(tmp_path: Path, *args: str, config: str | None = "", env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    creds = tmp_path / "creds"
    creds.mkdir(exist_ok=True)
    config_args = []
    if config is not None:
        (tmp_path / "config.yaml").write_text(config)
        config_args = [f"--config={tmp_path / 'config.yaml'}"]
    return run(
        "daprplane-sentry",
        *config_args,
        f"--issuer-credentials={creds}",
        f"--port={free_port()}",
        f"--healthz-port={free_port()}",
        f"--metrics-port={free_port()}",
        "--log-as-json",
        *args,
        env=env,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode=cloud"], "Invalid options: invalid mode: cloud"),
        (
            ["--jwt-issuer=https://x"],
            "Invalid options: jwt-issuer cannot be set when jwt-enabled is false",
        ),
        (
            ["--oidc-enabled", "--jwt-enabled"],
            "Invalid options: oidc-server-tls-cert-file is required when OIDC HTTP "
            "server is enabled "
            "(unless oidc-server-tls-enabled is false)",
        ),
    ],
)
def test_invalid_options(tmp_path: Path, args: list[str], message: str) -> None:
    assert fatal_message(_start(tmp_path, *args)) == message


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    message = fatal_message(_start(tmp_path, f"--config={missing}", config=None))
    assert message == (
        f'loading default config. couldn\'t find config name "{missing}": '
        f"stat {missing}: no such file or directory"
    )


def test_default_config_name_is_a_missing_file_in_standalone_mode(tmp_path: Path) -> None:
    assert 'couldn\'t find config name "daprsystem"' in fatal_message(_start(tmp_path, config=None))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "spec:\n  mtls:\n    tokenValidators:\n    - name: insecure\n",
            "invalid token validator: the built-in 'kubernetes' and 'insecure' "
            "validators cannot be "
            "configured manually",
        ),
        (
            "spec:\n  mtls:\n    tokenValidators:\n    - name: github\n",
            "invalid token validator name: 'github'; supported values: 'jwks'",
        ),
        (
            "spec:\n  mtls:\n    workloadCertTTL: 1d\n",
            'error parsing WorkloadCertTTL duration: time: unknown unit "d" in duration "1d"',
        ),
    ],
)
def test_invalid_config(tmp_path: Path, config: str, message: str) -> None:
    assert fatal_message(_start(tmp_path, config=config)).endswith(message)


def test_invalid_ca_bundle_is_fatal_and_untouched(tmp_path: Path) -> None:
    byo = ByoCA()
    creds = tmp_path / "creds"
    creds.mkdir()
    files = dict(
        zip(
            ["ca.crt", "issuer.crt", "issuer.key"],
            [byo.files[1], byo.files[1], byo.files[2]],
            strict=True,
        )
    )
    for name, data in files.items():
        (creds / name).write_bytes(data)
    message = fatal_message(_start(tmp_path))
    assert message == (
        "error creating CA: failed to verify CA bundle: certificate in trust anchor "
        "is not self-signed"
    )
    assert {name: (creds / name).read_bytes() for name in files} == files
