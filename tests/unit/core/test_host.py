"""Plugin discovery through the ``daprplane.plugins`` entry points of installed distributions."""

from __future__ import annotations

import types

import pytest

import daprplane
from daprplane.core.component import ComponentSpec
from daprplane.core.host import PluginHost, Status

BUILT_INS = {"placement", "sentry", "injector", "operator"}


def loaded(environ: dict[str, str] | None = None) -> PluginHost:
    host = PluginHost(environ=environ or {})
    host.load_entry_points()
    return host


def by_name(host: PluginHost) -> dict[str, object]:
    return {record.name: record for record in host.records}


def test_built_ins_and_a_third_party_plugin_load_through_entry_points() -> None:
    host = loaded()
    assert BUILT_INS | {"sample", "sample-fatal", "sample-needs-extra"} <= set(host.components)
    sample = by_name(host)["sample"]
    assert sample.status is Status.LOADED
    assert sample.distribution == "daprplane-sample 1.0.0"
    placement = by_name(host)["placement"]
    assert placement.distribution.startswith("daprplane ")


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load() -> None:
    host = loaded()
    broken = by_name(host)["sample-broken"]
    assert broken.status is Status.FAILED
    assert broken.distribution == "daprplane-sample 1.0.0"
    assert "ImportError" in broken.reason and "not installed" in broken.reason
    assert set(host.components) >= BUILT_INS


def test_allow_list() -> None:
    host = loaded({"DAPRPLANE_PLUGINS": "placement, sample"})
    assert set(host.components) == {"placement", "sample", "sample-fatal", "sample-needs-extra"}
    sentry = by_name(host)["sentry"]
    assert sentry.status is Status.DISABLED
    assert "DAPRPLANE_PLUGINS" in sentry.reason


def test_disable_list() -> None:
    host = loaded({"DAPRPLANE_DISABLE_PLUGINS": "sample,sample-broken,operator"})
    assert "operator" not in host.components and "sample" not in host.components
    assert {"placement", "sentry", "injector"} <= set(host.components)
    assert not host.failures()


def _plugin(**functions: object) -> types.SimpleNamespace:
    return types.SimpleNamespace(**functions)


async def _run(_: object) -> None:
    return None


def test_unknown_hook_is_the_plugins_fault() -> None:
    @daprplane.hookimpl
    def daprplane_no_such_hook() -> None:
        return None

    host = PluginHost(environ={})
    # Accepted at first: the component that defines a hook may load later.
    assert host.register(_plugin(daprplane_no_such_hook=daprplane_no_such_hook), "typo")
    (failed,) = host.check_pending()
    (record,) = host.records
    assert failed is record
    assert (
        record.status is Status.FAILED and "unknown hook 'daprplane_no_such_hook'" in record.reason
    )


def test_wrong_hook_arguments_are_reported() -> None:
    @daprplane.hookimpl
    def daprplane_placement_table_disseminated(namespace, not_an_argument):  # type: ignore[no-untyped-def]
        return None

    from daprplane.plugins.placement import plugin as placement_plugin

    host = PluginHost(environ={})
    assert host.register(placement_plugin, "placement")  # adds placement's hook specs
    plugin = _plugin(daprplane_placement_table_disseminated=daprplane_placement_table_disseminated)
    assert not host.register(plugin, "bad-args")
    (record,) = [r for r in host.records if r.name == "bad-args"]
    assert "not_an_argument" in record.reason


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (["not a spec"], "expected ComponentSpec, got str"),
        (RuntimeError("boom"), "RuntimeError: boom"),
    ],
)
def test_component_registration_failures_are_isolated(result: object, reason: str) -> None:
    @daprplane.hookimpl
    def daprplane_register_components():  # type: ignore[no-untyped-def]
        if isinstance(result, Exception):
            raise result
        return result

    @daprplane.hookimpl
    def good_components():  # type: ignore[no-untyped-def]
        return [ComponentSpec(name="good", summary="ok", run=_run)]

    host = PluginHost(environ={})
    assert not host.register(
        _plugin(daprplane_register_components=daprplane_register_components), "bad"
    )
    good = _plugin(daprplane_register_components=good_components)
    assert host.register(good, "good")
    assert set(host.components) == {"good"}
    assert reason in host.records[0].reason
    # The failed plugin is gone from the hook relay too: its other hooks are never called.
    assert host.manager.get_plugin("bad") is None


def test_component_name_clash_keeps_the_first() -> None:
    def make(summary: str) -> types.SimpleNamespace:
        @daprplane.hookimpl
        def daprplane_register_components():  # type: ignore[no-untyped-def]
            return [ComponentSpec(name="twin", summary=summary, run=_run)]

        return _plugin(daprplane_register_components=daprplane_register_components)

    host = PluginHost(environ={})
    assert host.register(make("first"), "one")
    assert not host.register(make("second"), "two")
    assert host.components["twin"].summary == "first"
    assert "already registered: twin" in host.records[1].reason


def test_missing_modules_name_what_is_missing() -> None:
    spec = ComponentSpec(
        name="x", summary="x", run=_run, requires=("json", "daprplane_no_such_module_xyz")
    )
    assert spec.missing_modules() == ["daprplane_no_such_module_xyz"]


def test_a_submodule_of_a_missing_package_is_reported_missing() -> None:
    # find_spec("a.b") raises instead of answering None when "a" is not installed (the
    # situation of "google.protobuf" in an install without extras).
    spec = ComponentSpec(
        name="x", summary="x", run=_run, requires=("json", "daprplane_no_such_pkg.protobuf")
    )
    assert spec.missing_modules() == ["daprplane_no_such_pkg.protobuf"]


def test_sentry_requires_pyjwt() -> None:
    # The sentry imports PyJWT ("jwt") for its JWTs and OIDC; without it in ``requires`` an
    # install without the extra got past the check and failed after writing its CA.
    host = PluginHost(environ={})
    host.load_entry_points()
    assert "jwt" in host.components["sentry"].requires
