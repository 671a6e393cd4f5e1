"""The injector's hooks through pluggy: order, wrappers, failures, and the registry mirror."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import pytest

from daprplane.core.host import PluginHost
from daprplane.plugin import hookimpl
from daprplane.plugins.injector import plugin as injector_plugin
from daprplane.plugins.injector import registry_mirror
from daprplane.plugins.injector.hooks import declared_annotations
from daprplane.plugins.injector.patcher import PatchError, build_patch
from tests.unit.injector.examples import PEM, helm_config, nodeapp_pod


def host_with(*plugins: tuple[str, object], environ: dict[str, str] | None = None) -> PluginHost:
    host = PluginHost(environ=environ or {})
    assert host.register(injector_plugin, "injector")
    for name, plugin in plugins:
        assert host.register(plugin, name), host.records[-1].reason
    return host


def inject(host: PluginHost, pod: dict[str, Any] | None = None, **env: str) -> list[dict]:
    return build_patch(
        pod or nodeapp_pod(),
        helm_config(**env),
        namespace="default",
        trust_anchors=PEM,
        hook=host.hook,
    )


def sidecar_of(patch: list[dict]) -> dict[str, Any]:
    return next(op["value"] for op in patch if op["path"] == "/spec/containers/-")


def tagger(name: str, calls: list[str], **options: Any) -> object:
    class Tagger:
        @hookimpl(**options)
        def daprplane_injector_annotations(self) -> list[str]:
            calls.append(f"annotations {name}")
            return [f"{name}.example/on"]

        @hookimpl(**options)
        def daprplane_injector_edit_sidecar(self, sidecar: dict[str, Any]) -> None:
            calls.append(f"sidecar {name}")
            sidecar.setdefault("env", []).append({"name": "BY", "value": name})

        @hookimpl(**options)
        def daprplane_injector_edit_pod(self) -> list[dict[str, Any]]:
            calls.append(f"pod {name}")
            return [{"op": "add", "path": f"/metadata/labels/by-{name}", "value": "1"}]

        @hookimpl(**options)
        def daprplane_injector_edit_patch(self, patch: list[dict[str, Any]]) -> None:
            calls.append(f"patch {name}")
            patch.append({"op": "add", "path": f"/metadata/annotations/{name}", "value": "1"})

    return Tagger()


def test_plugins_run_in_pluggys_order_with_tryfirst_and_trylast() -> None:
    calls: list[str] = []
    host = host_with(
        ("late", tagger("late", calls, trylast=True)),
        ("a", tagger("a", calls)),
        ("early", tagger("early", calls, tryfirst=True)),
        ("b", tagger("b", calls)),
    )
    order = ["early", "b", "a", "late"]
    assert declared_annotations(host.hook) == [f"{name}.example/on" for name in order]
    calls.clear()
    patch = inject(host)
    assert calls == [f"{hook} {name}" for hook in ("sidecar", "pod", "patch") for name in order]
    by = [entry["value"] for entry in sidecar_of(patch)["env"] if entry["name"] == "BY"]
    assert by == order
    assert [op["path"] for op in patch[-8:]] == [
        *(f"/metadata/labels/by-{name}" for name in order),
        *(f"/metadata/annotations/{name}" for name in order),
    ]


class Wrappers:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    @hookimpl(wrapper=True)
    def daprplane_injector_edit_sidecar(
        self, sidecar: dict[str, Any]
    ) -> Generator[None, list[Any], list[Any]]:
        self.calls.append("wrapper before")
        results = yield
        self.calls.append("wrapper after")
        # Wrappers see the shared container, with every accepted edit in it.
        sidecar.setdefault("env", []).append({"name": "WRAPPED", "value": str(len(sidecar["env"]))})
        return results

    @hookimpl(hookwrapper=True)
    def daprplane_injector_edit_pod(self) -> Generator[None, Any, None]:
        self.calls.append("old-style before")
        outcome = yield
        ops = [op for result in outcome.get_result() for op in result]
        outcome.force_result([[*ops, {"op": "add", "path": "/metadata/labels/w", "value": "1"}]])


def test_wrappers_of_both_styles_wrap_the_whole_call() -> None:
    calls: list[str] = []
    host = host_with(("w", Wrappers(calls)), ("a", tagger("a", calls)), ("b", tagger("b", calls)))
    patch = inject(host)
    assert calls[:4] == ["wrapper before", "sidecar b", "sidecar a", "wrapper after"]
    assert calls[4:7] == ["old-style before", "pod b", "pod a"]
    env = sidecar_of(patch)["env"]
    assert env[-1] == {"name": "WRAPPED", "value": str(len(env) - 1)}
    labels = [op["path"] for op in patch if op["path"].startswith("/metadata/labels/")]
    assert labels[-3:] == ["/metadata/labels/by-b", "/metadata/labels/by-a", "/metadata/labels/w"]


class RaisingWrapper:
    @hookimpl(wrapper=True)
    def daprplane_injector_edit_sidecar(self) -> Generator[None, Any, Any]:
        yield
        raise RuntimeError("wrapper bug")


class BreakingWrapper:
    @hookimpl(wrapper=True)
    def daprplane_injector_edit_sidecar(self, sidecar: dict[str, Any]) -> Generator[None, Any, Any]:
        result = yield
        sidecar["name"] = "renamed"
        return result


@pytest.mark.parametrize("wrapper", [RaisingWrapper(), BreakingWrapper()])
def test_a_failing_wrapper_is_the_wrappers_fault(
    wrapper: object, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    host = host_with(("bad-wrapper", wrapper), ("ok", tagger("ok", calls)))
    with caplog.at_level(logging.WARNING, logger="dapr.injector"):
        patch = inject(host)
    assert "injector plugin bad-wrapper failed in daprplane_injector_edit_sidecar" in caplog.text
    assert sidecar_of(patch)["name"] == "daprd"
    with pytest.raises(PatchError, match="injector plugin 'bad-wrapper' failed"):
        inject(host, DAPRPLANE_INJECTOR_PLUGIN_FAILURE="deny")


def test_deny_stops_at_the_failing_plugin_and_wrappers_see_it() -> None:
    seen: list[str] = []

    class Raising:
        @hookimpl(tryfirst=True)
        def daprplane_injector_edit_sidecar(self) -> None:
            raise RuntimeError("boom")

    class Sees:
        @hookimpl(wrapper=True)
        def daprplane_injector_edit_sidecar(self) -> Generator[None, Any, Any]:
            try:
                return (yield)
            except PatchError as error:
                seen.append(str(error))
                raise

    calls: list[str] = []
    host = host_with(("sees", Sees()), ("ok", tagger("ok", calls)), ("raising", Raising()))
    with pytest.raises(PatchError):
        inject(host, DAPRPLANE_INJECTOR_PLUGIN_FAILURE="deny")
    assert seen == [
        "injector plugin 'raising' failed in daprplane_injector_edit_sidecar: RuntimeError: boom"
    ]
    assert "sidecar ok" not in calls


# --- registry mirror: settings read once, from the host's environment ----------------------


MIRROR = {
    registry_mirror.MIRROR_ENV: "ghcr.io/dapr=registry.example.internal/dapr",
    registry_mirror.PULL_SECRETS_ENV: "regcred, other",
}


def test_registry_mirror_reads_its_settings_from_the_host_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environ = dict(MIRROR)
    host = host_with(("injector-registry-mirror", registry_mirror), environ=environ)
    pod = nodeapp_pod()
    pod["metadata"]["annotations"]["dapr.io/sidecar-image-pull-secrets"] = "other,annotated"
    patch = inject(host, pod)
    assert sidecar_of(patch)["image"] == "registry.example.internal/dapr/daprd:1.18.3"
    assert patch[-1] == {
        "op": "add",
        "path": "/spec/imagePullSecrets",
        "value": [{"name": "regcred"}, {"name": "other"}, {"name": "annotated"}],
    }
    # Read once: neither the host's mapping nor the process environment is read per pod.
    environ.clear()
    monkeypatch.setenv(registry_mirror.MIRROR_ENV, "ghcr.io/dapr=elsewhere/dapr")
    assert inject(host, pod) == patch


def test_registry_mirror_without_settings_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in MIRROR.items():
        monkeypatch.setenv(name, value)  # the process environment is not where it looks
    host = host_with(("injector-registry-mirror", registry_mirror), environ={})
    bare = PluginHost(environ={})
    assert inject(host) == inject(bare)


def test_registry_mirror_settings_parse() -> None:
    settings = registry_mirror.MirrorSettings.from_environ(
        {registry_mirror.MIRROR_ENV: "a=b, bad", registry_mirror.PULL_SECRETS_ENV: " x ,,y"}
    )
    assert settings == registry_mirror.MirrorSettings((("a", "b"),), ("x", "y"))
