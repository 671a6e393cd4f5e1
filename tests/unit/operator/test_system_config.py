"""The control plane's Configuration: ``spec.mtls`` read the way Dapr reads it (contract §1.4 step
2), and never a crash on an ill-typed object."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daprplane.core.kube.client import KubeApiError
from daprplane.plugins.operator import system_config
from daprplane.plugins.operator.system_config import (
    SystemConfig,
    SystemConfigError,
    load_system_config,
    mtls_enabled,
)

NS = "dapr-system"


def configuration(name: str = "daprsystem", **mtls: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Configuration",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"mtls": mtls},
    }


# -- mtls_enabled ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (None, True),
        ({}, True),
        ({"spec": None}, True),
        ({"spec": []}, True),
        ({"spec": {}}, True),
        ({"spec": {"mtls": None}}, True),
        ({"spec": {"mtls": "off"}}, True),
        ({"spec": {"mtls": {}}}, True),
        ({"spec": {"mtls": {"enabled": None}}}, True),
        ({"spec": {"mtls": {"enabled": True}}}, True),
        ({"spec": {"mtls": {"enabled": False}}}, False),
        # Not a boolean: Go's *bool could not have held it, so the default applies.
        ({"spec": {"mtls": {"enabled": "false"}}}, True),
        ({"spec": {"mtls": {"enabled": 0}}}, True),
    ],
)
def test_mtls_enabled(obj: dict[str, Any] | None, expected: bool) -> None:
    assert mtls_enabled(obj) is expected


# -- from_object -----------------------------------------------------------------------------------


def test_a_complete_configuration() -> None:
    config = SystemConfig.from_object(
        configuration(
            enabled=False,
            controlPlaneTrustDomain="cluster.local",
            sentryAddress="sentry.example:50001",
        ),
        NS,
    )
    assert config == SystemConfig(
        name="daprsystem",
        mtls_enabled=False,
        control_plane_trust_domain="cluster.local",
        sentry_address="sentry.example:50001",
    )


def test_sentry_address_defaults_to_the_namespace_service() -> None:
    config = SystemConfig.from_object(configuration(controlPlaneTrustDomain="td"), "my-ns")
    assert config.sentry_address == "dapr-sentry.my-ns.svc.cluster.local:443"
    assert config.mtls_enabled is True


@pytest.mark.parametrize("address", ["", "   ", None, 443, ["sentry:443"]])
def test_blank_or_ill_typed_sentry_address_uses_the_default(address: Any) -> None:
    config = SystemConfig.from_object(
        configuration(controlPlaneTrustDomain="td", sentryAddress=address), NS
    )
    assert config.sentry_address == f"dapr-sentry.{NS}.svc.cluster.local:443"


def test_values_are_trimmed() -> None:
    config = SystemConfig.from_object(
        configuration(controlPlaneTrustDomain=" td \n", sentryAddress=" sentry:443 "), NS
    )
    assert config.control_plane_trust_domain == "td"
    assert config.sentry_address == "sentry:443"


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"spec": None},
        {"spec": "mtls"},
        {"spec": {}},
        {"spec": {"mtls": None}},
        {"spec": {"mtls": []}},
        configuration(),
        configuration(controlPlaneTrustDomain=""),
        configuration(controlPlaneTrustDomain="   "),
        configuration(controlPlaneTrustDomain=None),
        configuration(controlPlaneTrustDomain=42),
        configuration(controlPlaneTrustDomain=["td"]),
    ],
)
def test_the_trust_domain_is_required(obj: dict[str, Any]) -> None:
    with pytest.raises(SystemConfigError, match=r"^control plane trust domain is required$"):
        SystemConfig.from_object(obj, NS)


@pytest.mark.parametrize(("metadata", "name"), [(None, ""), ([], ""), ({}, ""), ({"name": 7}, "7")])
def test_name_of_odd_metadata(metadata: Any, name: str) -> None:
    obj = {"metadata": metadata, "spec": {"mtls": {"controlPlaneTrustDomain": "td"}}}
    assert SystemConfig.from_object(obj, NS).name == name


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
MTLS_KEYS = st.sampled_from(["enabled", "controlPlaneTrustDomain", "sentryAddress", "other"])
# Shapes that reach the fields (a configuration with spec.mtls of random contents), and
# arbitrary JSON everywhere else.
CONFIGURATIONS = st.one_of(
    st.dictionaries(st.text(max_size=8), JSON, max_size=4),
    st.fixed_dictionaries(
        {"spec": st.fixed_dictionaries({"mtls": st.dictionaries(MTLS_KEYS, JSON)})},
        optional={"metadata": JSON},
    ),
    st.fixed_dictionaries(
        {"spec": st.one_of(JSON, st.fixed_dictionaries({"mtls": JSON}))},
        optional={"metadata": JSON},
    ),
)


@given(CONFIGURATIONS, st.text(min_size=1, max_size=8))
def test_any_json_either_loads_or_raises_system_config_error(
    obj: dict[str, Any], namespace: str
) -> None:
    try:
        config = SystemConfig.from_object(obj, namespace)
    except SystemConfigError as error:
        assert str(error) == "control plane trust domain is required"
        return
    assert config.control_plane_trust_domain
    assert config.control_plane_trust_domain == config.control_plane_trust_domain.strip()
    assert config.sentry_address
    assert isinstance(config.mtls_enabled, bool)
    assert isinstance(config.name, str)


@given(CONFIGURATIONS)
def test_mtls_enabled_of_any_object_is_a_boolean(obj: dict[str, Any]) -> None:
    enabled = mtls_enabled(obj)
    assert isinstance(enabled, bool)
    mtls = (obj.get("spec") or {}).get("mtls") if isinstance(obj.get("spec"), dict) else None
    if not isinstance(mtls, dict) or mtls.get("enabled") is not False:
        assert enabled is True


# -- load_system_config ----------------------------------------------------------------------------


class FakeRequest:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, api: Any, method: str, path: str, **kwargs: Any) -> Any:
        self.calls.append((method, path))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


async def test_load_reads_the_named_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRequest(configuration(controlPlaneTrustDomain="td"))
    monkeypatch.setattr(system_config, "request", fake)
    config = await load_system_config(object(), NS, "daprsystem")
    assert config.control_plane_trust_domain == "td"
    assert fake.calls == [
        ("GET", f"/apis/dapr.io/v1alpha1/namespaces/{NS}/configurations/daprsystem")
    ]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            KubeApiError(404, 'configurations.dapr.io "daprsystem" not found'),
            'unable to load configuration: configurations.dapr.io "daprsystem" not found',
        ),
        (ConnectionRefusedError("refused"), "unable to load configuration: refused"),
        (TimeoutError("slow"), "unable to load configuration: slow"),
        ([], "unable to load configuration: daprsystem: not an object"),
        (None, "unable to load configuration: daprsystem: not an object"),
        (configuration(), "control plane trust domain is required"),
    ],
)
async def test_load_failures(monkeypatch: pytest.MonkeyPatch, answer: Any, message: str) -> None:
    monkeypatch.setattr(system_config, "request", FakeRequest(answer))
    with pytest.raises(SystemConfigError) as caught:
        await load_system_config(object(), NS, "daprsystem")
    assert str(caught.value) == message
