"""The flag tables of the four components match the flags Dapr's binaries accept."""

from __future__ import annotations

import importlib
import keyword
from datetime import timedelta
from typing import Any

import pytest

from daprplane.core.flags import Flag, Kind

SHARED = {
    "log-level",
    "log-as-json",
    "log-file",
    "enable-metrics",
    "metrics-port",
    "metrics-listen-address",
    "healthz-port",
    "healthz-listen-address",
}

TRUST_ANCHORS = "/var/run/secrets/dapr.io/tls/ca.crt"

# Expected kind and resolved default of every component-specific flag, with HOME=/home/dapr and
# neither NAMESPACE nor DAPR_PLACEMENT_METADATA_ENABLED set.
EXPECTED: dict[str, dict[str, tuple[Kind, Any]]] = {
    "placement": {
        "id": (Kind.STRING, "dapr-placement-0"),
        "initial-cluster": (Kind.STRING_SLICE, ("dapr-placement-0=127.0.0.1:8201",)),
        "inmem-store-enabled": (Kind.BOOL, True),
        "raft-logstore-path": (Kind.STRING, ""),
        "port": (Kind.INT, 50005),
        "listen-address": (Kind.STRING, ""),
        "tls-enabled": (Kind.BOOL, False),
        "metadata-enabled": (Kind.BOOL, False),
        "replicationFactor": (Kind.INT, 100),
        "keepalive-time": (Kind.DURATION, timedelta(seconds=2)),
        "keepalive-timeout": (Kind.DURATION, timedelta(seconds=3)),
        "disseminate-timeout": (Kind.DURATION, timedelta(seconds=8)),
        "disseminate-coalesce-window": (Kind.DURATION, timedelta(0)),
        "trust-domain": (Kind.STRING, "localhost"),
        "trust-anchors-file": (Kind.STRING, TRUST_ANCHORS),
        "sentry-address": (Kind.STRING, "dapr-sentry.default.svc:443"),
        "mode": (Kind.STRING, "standalone"),
        "max-api-level": (Kind.INT, 10),
        "min-api-level": (Kind.INT, 0),
    },
    "sentry": {
        "config": (Kind.STRING, "daprsystem"),
        "issuer-credentials": (Kind.STRING, "/var/run/secrets/dapr.io/credentials"),
        "issuer-ca-filename": (Kind.STRING, "ca.crt"),
        "issuer-certificate-filename": (Kind.STRING, "issuer.crt"),
        "issuer-key-filename": (Kind.STRING, "issuer.key"),
        "trust-domain": (Kind.STRING, "localhost"),
        "port": (Kind.INT, 50001),
        "listen-address": (Kind.STRING, ""),
        "mode": (Kind.STRING, "standalone"),
        "kubeconfig": (Kind.STRING, "/home/dapr/.kube/config"),
        "jwt-enabled": (Kind.BOOL, False),
        "jwt-key-filename": (Kind.STRING, "jwt.key"),
        "jwks-filename": (Kind.STRING, "jwks.json"),
        "jwt-issuer": (Kind.STRING, ""),
        "jwt-signing-algorithm": (Kind.STRING, "RS256"),
        "jwt-key-id": (Kind.STRING, ""),
        "jwt-ttl": (Kind.DURATION, timedelta(hours=24)),
        "oidc-enabled": (Kind.BOOL, False),
        "oidc-server-listen-port": (Kind.INT, 9080),
        "oidc-server-listen-address": (Kind.STRING, "localhost"),
        "oidc-server-tls-enabled": (Kind.BOOL, True),
        "oidc-server-tls-cert-file": (Kind.STRING, ""),
        "oidc-server-tls-key-file": (Kind.STRING, ""),
        "oidc-jwks-uri": (Kind.STRING, ""),
        "oidc-path-prefix": (Kind.STRING, ""),
        "oidc-allowed-hosts": (Kind.STRING_SLICE, ()),
    },
    "injector": {
        "port": (Kind.INT, 4000),
        "listen-address": (Kind.STRING, ""),
        "scheduler-enabled": (Kind.BOOL, True),
        "kubeconfig": (Kind.STRING, "/home/dapr/.kube/config"),
    },
    "operator": {
        "config": (Kind.STRING, "daprsystem"),
        "watch-interval": (Kind.STRING, "0"),
        "max-pod-restarts-per-minute": (Kind.INT, 20),
        "disable-leader-election": (Kind.BOOL, False),
        "disable-service-reconciler": (Kind.BOOL, False),
        "watch-namespace": (Kind.STRING, ""),
        "enable-argo-rollout-service-reconciler": (Kind.BOOL, False),
        "watchdog-can-patch-pod-labels": (Kind.BOOL, False),
        "trust-anchors-file": (Kind.STRING, TRUST_ANCHORS),
        "port": (Kind.INT, 6500),
        "listen-address": (Kind.STRING, ""),
        "webhook-server-port": (Kind.INT, 19443),
        "webhook-server-listen-address": (Kind.STRING, ""),
        "cache-sync-period": (Kind.DURATION, timedelta(0)),
        "kubeconfig": (Kind.STRING, ""),
    },
}

COMPONENTS = sorted(EXPECTED)


def flags_of(component: str) -> tuple[Flag, ...]:
    module = importlib.import_module(f"daprplane.plugins.{component}.flags")
    flags: tuple[Flag, ...] = module.FLAGS
    return flags


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("HOME", "/home/dapr")
    monkeypatch.delenv("NAMESPACE", raising=False)
    monkeypatch.delenv("DAPR_PLACEMENT_METADATA_ENABLED", raising=False)
    return monkeypatch


@pytest.mark.parametrize("component", COMPONENTS)
def test_names_kinds_and_defaults(component: str, clean_env: pytest.MonkeyPatch) -> None:
    flags = flags_of(component)
    assert isinstance(flags, tuple)
    assert all(isinstance(flag, Flag) for flag in flags)
    actual = {flag.name: (flag.kind, flag.resolve_default()) for flag in flags}
    assert actual == EXPECTED[component]


@pytest.mark.parametrize("component", COMPONENTS)
def test_no_duplicates(component: str) -> None:
    names = [flag.name for flag in flags_of(component)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("component", COMPONENTS)
def test_shared_flags_left_to_core(component: str) -> None:
    names = {flag.name for flag in flags_of(component)}
    attributes = {flag.attribute for flag in flags_of(component)}
    assert not names & SHARED
    assert not attributes & {name.replace("-", "_") for name in SHARED}


@pytest.mark.parametrize("component", COMPONENTS)
def test_attributes_unique_identifiers(component: str) -> None:
    attributes = [flag.attribute for flag in flags_of(component)]
    assert len(attributes) == len(set(attributes))
    for attribute in attributes:
        assert attribute.isidentifier(), attribute
        assert not keyword.iskeyword(attribute), attribute


@pytest.mark.parametrize("component", COMPONENTS)
def test_help_texts_present(component: str) -> None:
    for flag in flags_of(component):
        assert flag.help.strip(), flag.name


@pytest.mark.parametrize("component", COMPONENTS)
def test_slice_defaults_are_tuples(component: str) -> None:
    for flag in flags_of(component):
        if flag.kind is Kind.STRING_SLICE:
            assert isinstance(flag.default, tuple), flag.name


def test_replication_factor_keeps_camel_case() -> None:
    (flag,) = [flag for flag in flags_of("placement") if flag.name == "replicationFactor"]
    assert flag.attribute == "replication_factor"


def test_placement_durations_in_go_syntax() -> None:
    defaults = {flag.name: flag.default for flag in flags_of("placement")}
    assert defaults["keepalive-time"] == "2s"
    assert defaults["keepalive-timeout"] == "3s"
    assert defaults["disseminate-timeout"] == "8s"
    assert defaults["disseminate-coalesce-window"] == "0s"


def test_placement_api_level_flags_deprecated_and_hidden() -> None:
    by_name = {flag.name: flag for flag in flags_of("placement")}
    for name in ("max-api-level", "min-api-level"):
        assert by_name[name].hidden
        assert by_name[name].deprecated
    unlisted = {name for name, flag in by_name.items() if flag.hidden or flag.deprecated}
    assert unlisted == {"max-api-level", "min-api-level"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("Yes", True), (" on ", True), ("1", True), ("0", False), ("", False)],
)
def test_placement_metadata_enabled_from_env(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("DAPR_PLACEMENT_METADATA_ENABLED", value)
    (flag,) = [flag for flag in flags_of("placement") if flag.name == "metadata-enabled"]
    assert callable(flag.default)
    assert flag.resolve_default() is expected


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [
        ("dapr-system", "dapr-sentry.dapr-system.svc:443"),
        ("", "dapr-sentry.default.svc:443"),
        (None, "dapr-sentry.default.svc:443"),
    ],
)
def test_placement_sentry_address_from_namespace(
    monkeypatch: pytest.MonkeyPatch, namespace: str | None, expected: str
) -> None:
    if namespace is None:
        monkeypatch.delenv("NAMESPACE", raising=False)
    else:
        monkeypatch.setenv("NAMESPACE", namespace)
    (flag,) = [flag for flag in flags_of("placement") if flag.name == "sentry-address"]
    assert callable(flag.default)
    assert flag.resolve_default() == expected


@pytest.mark.parametrize("component", ["sentry", "injector"])
def test_kubeconfig_empty_without_home(component: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOME", raising=False)
    (flag,) = [flag for flag in flags_of(component) if flag.name == "kubeconfig"]
    assert flag.resolve_default() == ""


def test_operator_watch_interval_is_a_string() -> None:
    (flag,) = [flag for flag in flags_of("operator") if flag.name == "watch-interval"]
    assert flag.kind is Kind.STRING
    assert flag.resolve_default() == "0"
