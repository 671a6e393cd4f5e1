"""Sentry configuration loading (contract §1.4) and ``os.ExpandEnv`` semantics."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from daprplane.plugins.sentry.config import (
    ConfigError,
    SentryConfig,
    TokenValidatorConfig,
    expand_env,
    load_from_configuration_object,
    load_standalone,
)

ENV = {"A": "x", "LONG_NAME": "y", "1": "one"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$A", "x"),
        ("${A}", "x"),
        ("a$A-b", "ax-b"),
        ("$LONG_NAME.z", "y.z"),
        ("$UNSET|", "|"),
        ("${UNSET}", ""),
        ("$", "$"),
        ("a$", "a$"),
        ("$ a", "$ a"),
        ("${}", ""),
        ("${A", "A"),
        ("$1x", "onex"),
        ("$$", ""),
    ],
)
def test_expand_env(text: str, expected: str) -> None:
    assert expand_env(text, ENV) == expected


def test_defaults() -> None:
    config = SentryConfig()
    assert config.workload_cert_ttl == timedelta(hours=24)
    assert config.allowed_clock_skew == timedelta(minutes=15)
    assert config.trust_domain == "cluster.local"
    assert config.with_trust_domain("x").trust_domain == "x"


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("")
    assert load_standalone(str(path)) == SentryConfig()


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_standalone(str(path))
    assert str(caught.value) == (
        f'loading default config. couldn\'t find config name "{path}": '
        f"stat {path}: no such file or directory"
    )


def test_file_with_env_expansion(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: daprsystem\n"
        "spec:\n  mtls:\n    enabled: true\n    workloadCertTTL: ${TTL}\n    "
        "allowedClockSkew: 1m30s\n"
        "    controlPlaneTrustDomain: $TD\n"
        "    tokenValidators:\n    - name: JWKS\n      options:\n"
        "        source: '{}'\n        minRefreshInterval: 60\n"
    )
    config = load_standalone(str(path), environ={"TTL": "2h", "TD": "example.org"})
    assert config.workload_cert_ttl == timedelta(hours=2)
    assert config.allowed_clock_skew == timedelta(seconds=90)
    assert config.trust_domain == "example.org"
    assert config.token_validators == (
        TokenValidatorConfig("jwks", {"source": "{}", "minRefreshInterval": "60"}),
    )


@pytest.mark.parametrize(
    ("mtls", "message"),
    [
        (
            {"workloadCertTTL": "abc"},
            'error parsing WorkloadCertTTL duration: time: invalid duration "abc"',
        ),
        (
            {"allowedClockSkew": "5"},
            'error parsing AllowedClockSkew duration: time: missing unit in duration "5"',
        ),
        (
            {"tokenValidators": [{"name": "kubernetes"}]},
            (
                "invalid token validator: the built-in 'kubernetes' and 'insecure' "
                "validators cannot be configured manually"
            ),
        ),
        (
            {"tokenValidators": [{"name": "Insecure"}]},
            (
                "invalid token validator: the built-in 'kubernetes' and 'insecure' "
                "validators cannot be configured manually"
            ),
        ),
        (
            {"tokenValidators": [{"name": "oidc"}]},
            "invalid token validator name: 'oidc'; supported values: 'jwks'",
        ),
    ],
)
def test_configuration_errors(mtls, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        load_from_configuration_object({"spec": {"mtls": mtls}})
    assert str(caught.value) == message


def test_errors_in_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("spec:\n  mtls:\n    workloadCertTTL: bad\n")
    with pytest.raises(
        ConfigError,
        match=r'^loading default config\. couldn\'t find config name ".*c\.yaml": '
        r"error parsing WorkloadCertTTL",
    ):
        load_standalone(str(path))


def test_plugin_validator_names_are_accepted() -> None:
    config = load_from_configuration_object(
        {"spec": {"mtls": {"tokenValidators": [{"name": "Audit"}]}}}, extra_validators=["audit"]
    )
    assert config.token_validators == (TokenValidatorConfig("audit", {}),)


def test_configuration_object_without_mtls() -> None:
    assert load_from_configuration_object({"kind": "Configuration", "spec": {}}) == SentryConfig()
    assert load_from_configuration_object(None) == SentryConfig()
