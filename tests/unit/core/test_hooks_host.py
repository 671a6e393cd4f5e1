"""The host's hooks: specs added when a component loads, settings, and the plugin surface."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

from daprplane.core.component import ComponentSpec
from daprplane.core.host import PluginHost, Status
from daprplane.plugin import hookimpl, hookspec
from daprplane.plugins.placement import plugin as placement_plugin


async def _run(_: object) -> None:
    return None


def _plugin(**functions: object) -> types.SimpleNamespace:
    return types.SimpleNamespace(**functions)


def test_a_component_adds_its_specs_when_it_loads() -> None:
    host = PluginHost(environ={})
    assert not hasattr(host.hook, "daprplane_placement_table_disseminated")
    assert host.register(placement_plugin, "placement")
    spec = host.hook.daprplane_placement_table_disseminated.spec
    assert spec is not None and spec.argnames == ("namespace", "version", "tables")
    assert not hasattr(host.hook, "daprplane_injector_edit_sidecar")


def test_a_plugin_loaded_before_its_component_is_checked_when_the_specs_arrive() -> None:
    @hookimpl
    def daprplane_placement_table_disseminated(namespace, not_an_argument):  # type: ignore[no-untyped-def]
        return None

    @hookimpl
    def good(namespace):  # type: ignore[no-untyped-def]
        return None

    host = PluginHost(environ={})
    bad = _plugin(daprplane_placement_table_disseminated=daprplane_placement_table_disseminated)
    assert host.register(bad, "bad-args")
    assert host.register(_plugin(daprplane_placement_table_disseminated=good), "early")
    assert host.register(placement_plugin, "placement")  # the component is not blamed
    records = {record.name: record for record in host.records}
    assert records["bad-args"].status is Status.FAILED
    assert "not_an_argument" in records["bad-args"].reason
    assert records["early"].status is Status.LOADED
    assert records["placement"].status is Status.LOADED and "placement" in host.components
    assert host.manager.get_plugin("bad-args") is None
    # A plugin that registers after the specs are there is checked at once, by pluggy.
    assert not host.register(bad, "late")
    assert "not_an_argument" in host.records[-1].reason


def test_unknown_hooks_are_reported_once_everything_has_loaded() -> None:
    @hookimpl
    def daprplane_no_such_hook() -> None:
        return None

    @hookimpl(optionalhook=True)
    def daprplane_other_component_hook() -> None:
        return None

    @hookimpl
    def daprplane_injector_edit_sidecar(sidecar):  # type: ignore[no-untyped-def]
        return None

    host = PluginHost(environ={})
    host._entry_point_names = ["injector", "placement"]  # installed; injector is not loaded
    assert host.register(_plugin(daprplane_no_such_hook=daprplane_no_such_hook), "typo")
    assert host.register(
        _plugin(daprplane_other_component_hook=daprplane_other_component_hook), "optional"
    )
    assert host.register(
        _plugin(daprplane_injector_edit_sidecar=daprplane_injector_edit_sidecar), "for-injector"
    )
    assert host.register(placement_plugin, "placement")
    failed = host.check_pending()
    assert [record.name for record in failed] == ["typo"]
    assert "unknown hook 'daprplane_no_such_hook'" in failed[0].reason
    assert {record.name for record in host.failures()} == {"typo"}


def test_the_sample_plugin_loads_with_its_components_disabled() -> None:
    host = PluginHost(environ={"DAPRPLANE_PLUGINS": "placement,sample"})
    host.load_entry_points()
    sample = next(record for record in host.records if record.name == "sample")
    assert sample.status is Status.LOADED, sample.reason


def test_every_built_in_loads_and_defines_its_hooks() -> None:
    host = PluginHost(environ={})
    host.load_entry_points()
    assert {"sample-broken"} == {record.name for record in host.failures()}
    for name in (
        "daprplane_injector_edit_sidecar",
        "daprplane_sentry_token_validators",
        "daprplane_sentry_certificate_issued",
        "daprplane_placement_table_disseminated",
        "daprplane_operator_resource_changed",
    ):
        assert getattr(host.hook, name).spec is not None, name


def test_configure_hands_every_plugin_the_host_environment_once() -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    def configured(name: str) -> types.SimpleNamespace:
        @hookimpl
        def daprplane_configure(environ: Mapping[str, str]) -> None:
            seen.append((name, dict(environ)))

        return _plugin(daprplane_configure=daprplane_configure)

    host = PluginHost(environ={"ACME": "1"})
    host.register(configured("first"), "first")
    host.register(configured("second"), "second")
    assert seen == [("first", {"ACME": "1"}), ("second", {"ACME": "1"})]


def test_a_plugin_whose_configure_raises_is_unloaded_with_the_reason() -> None:
    @hookimpl
    def daprplane_configure(environ: Mapping[str, str]) -> None:
        raise ValueError("ACME_URL is not a URL")

    host = PluginHost(environ={})
    assert not host.register(_plugin(daprplane_configure=daprplane_configure), "acme")
    assert host.records[-1].reason == "set-up failed: ValueError: ACME_URL is not a URL"
    assert host.manager.get_plugin("acme") is None


def test_component_registration_goes_through_pluggy_wrappers() -> None:
    seen: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def daprplane_register_components(self) -> Generator[None, list[Any], list[Any]]:
            results = yield
            seen.append(f"wrapped {len(results)}")
            return results

    @hookimpl
    def components():  # type: ignore[no-untyped-def]
        return [ComponentSpec(name="acme", summary="acme", run=_run)]

    host = PluginHost(environ={})
    assert host.register(Wrapper(), "wrapper")
    assert host.register(_plugin(daprplane_register_components=components), "acme")
    assert seen == ["wrapped 0", "wrapped 1"]
    assert set(host.components) == {"acme"}


def test_the_plugin_surface_imports_no_component() -> None:
    code = (
        "import sys; from daprplane import plugin; "
        "print(sorted(m for m in sys.modules if m.startswith(('daprplane.plugins', 'grpc', "
        "'google.protobuf', 'daprplane._proto'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    from daprplane import plugin

    assert plugin.check_sign_request.__module__ == "daprplane.plugins.sentry.validators.common"
    assert plugin.PlacementHost.__name__ == "Host"
    assert {"hookimpl", "Validation", "PodOperation", "string"} <= set(plugin.__all__)


def test_the_sample_plugin_uses_only_the_plugin_surface() -> None:
    import daprplane_sample.plugin as sample

    source = Path(sample.__file__).read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import", "from"))]
    imports = [line for line in imports if "daprplane" in line]
    assert imports == ["from daprplane import plugin"]


def test_a_plugin_whose_own_specs_do_not_fit_it_is_reported() -> None:
    class Specs:
        @hookspec
        def daprplane_acme_event(self, value: int) -> None:
            """An event of the acme component."""

    @hookimpl
    def daprplane_addhooks(pluginmanager: Any) -> None:
        pluginmanager.add_hookspecs(Specs)

    @hookimpl
    def daprplane_acme_event(value, oops):  # type: ignore[no-untyped-def]
        return None

    host = PluginHost(environ={})
    plugin = _plugin(
        daprplane_addhooks=daprplane_addhooks, daprplane_acme_event=daprplane_acme_event
    )
    assert not host.register(plugin, "acme")
    assert host.records[-1].status is Status.FAILED and "'oops'" in host.records[-1].reason
    assert host.manager.get_plugin("acme") is None
