"""Plugin hooks around the patch, pluggable components, the registry plugin, and fuzzing."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daprplane.core.host import PluginHost
from daprplane.core.markers import hookimpl
from daprplane.plugins.injector import registry_mirror
from daprplane.plugins.injector.annotations import ANNOTATIONS
from daprplane.plugins.injector.hooks import declared_annotations
from daprplane.plugins.injector.patcher import PatchError, build_patch
from tests.unit.injector.examples import PEM, helm_config, nodeapp_pod


def sidecar_of(patch):
    return next(op["value"] for op in patch if op["path"] == "/spec/containers/-")


def inject(host: PluginHost | None, pod=None, failures=None, **env) -> list[dict[str, Any]]:
    return build_patch(
        pod or nodeapp_pod(),
        helm_config(**env),
        namespace="default",
        trust_anchors=PEM,
        hook=host.hook if host else None,
        on_plugin_failure=failures.append if failures is not None else None,
    )


class Recorder:
    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    @hookimpl
    def daprplane_injector_edit_sidecar(self, sidecar):
        self.calls.append(("sidecar", self.name))
        sidecar.setdefault("env", []).append({"name": "BY", "value": self.name})

    @hookimpl
    def daprplane_injector_edit_pod(self, pod, annotations):
        self.calls.append(("pod", self.name))
        return [{"op": "add", "path": f"/metadata/labels/by-{self.name}", "value": "1"}]

    @hookimpl
    def daprplane_injector_edit_patch(self, patch):
        self.calls.append(("patch", self.name))
        patch.append({"op": "add", "path": f"/metadata/annotations/seen-{self.name}", "value": "1"})


def test_hooks_run_in_documented_order_and_pluggy_order():
    host, calls = PluginHost(environ={}), []
    for name in ("first", "second"):
        assert host.register(Recorder(name, calls), name)
    patch = inject(host)
    # Hook by hook as documented; within a hook, pluggy's order: last registered first.
    assert calls == [
        ("sidecar", "second"),
        ("sidecar", "first"),
        ("pod", "second"),
        ("pod", "first"),
        ("patch", "second"),
        ("patch", "first"),
    ]
    assert [e["value"] for e in sidecar_of(patch)["env"] if e["name"] == "BY"] == [
        "second",
        "first",
    ]
    assert [op["path"] for op in patch[-4:]] == [
        "/metadata/labels/by-second",
        "/metadata/labels/by-first",
        "/metadata/annotations/seen-second",
        "/metadata/annotations/seen-first",
    ]


class Raising:
    @hookimpl
    def daprplane_injector_edit_sidecar(self, sidecar):
        sidecar["image"] = "half-done"
        raise RuntimeError("boom")


class Renaming:
    @hookimpl
    def daprplane_injector_edit_sidecar(self, sidecar):
        sidecar["name"] = "not-daprd"


class BadPodOps:
    def __init__(self, ops):
        self.ops = ops

    @hookimpl
    def daprplane_injector_edit_pod(self):
        return self.ops


class BreaksPatch:
    @hookimpl
    def daprplane_injector_edit_patch(self, patch):
        patch.append({"op": "frobnicate", "path": "/x"})


@pytest.mark.parametrize(
    "plugin",
    [
        Raising(),
        Renaming(),
        BadPodOps([{"op": "add", "path": "/status/x", "value": 1}]),
        BadPodOps([{"op": "move", "path": "/spec/x"}]),
        BadPodOps([{"op": "add", "path": "/spec/x"}]),
        BadPodOps("not a list"),
        BadPodOps([{"op": "add", "path": "/spec/x", "value": object()}]),
        BreaksPatch(),
    ],
)
def test_failing_plugins_are_skipped_or_deny(plugin, caplog):
    host = PluginHost(environ={})
    assert host.register(plugin, "bad-plugin")
    failures: list[str] = []
    with caplog.at_level(logging.WARNING, logger="dapr.injector"):
        patch = inject(host, failures=failures)
    assert patch == inject(None)  # nothing of the failed plugin's contribution survives
    assert failures == ["bad-plugin"]
    assert "bad-plugin" in caplog.text
    with pytest.raises(PatchError, match="injector plugin 'bad-plugin' failed"):
        inject(host, failures=failures, DAPRPLANE_INJECTOR_PLUGIN_FAILURE="deny")
    assert failures == ["bad-plugin", "bad-plugin"]


def test_a_failing_plugin_does_not_stop_the_next():
    host, calls = PluginHost(environ={}), []
    host.register(Raising(), "raising")
    host.register(Recorder("ok", calls), "ok")
    patch = inject(host)
    assert sidecar_of(patch)["image"] == "ghcr.io/dapr/daprd:1.18.3"
    assert {"name": "BY", "value": "ok"} in sidecar_of(patch)["env"]


def test_sample_third_party_plugin_from_entry_points():
    host = PluginHost(environ={"DAPRPLANE_PLUGINS": "sample,injector"})
    host.load_entry_points()
    assert "sample.daprplane.dev/greeting" in declared_annotations(host.hook)
    pod = nodeapp_pod()
    pod["metadata"]["annotations"]["sample.daprplane.dev/greeting"] = "hello"
    env = sidecar_of(inject(host, pod))["env"]
    assert env[-1] == {"name": "SAMPLE_GREETING", "value": "hello"}
    assert "SAMPLE_GREETING" not in json.dumps(inject(host))


# --- registry mirror -----------------------------------------------------------------------


def test_registry_mirror_rules():
    rules = registry_mirror.parse_rules(
        "ghcr.io/dapr=registry.example.internal/dapr, bad, docker.io=m/"
    )
    assert rules == [("ghcr.io/dapr", "registry.example.internal/dapr"), ("docker.io", "m")]
    assert (
        registry_mirror.mirrored("ghcr.io/dapr/daprd:1.18.3", rules)
        == "registry.example.internal/dapr/daprd:1.18.3"
    )
    assert registry_mirror.mirrored("ghcr.io/daprx/daprd:1", rules) == "ghcr.io/daprx/daprd:1"
    assert registry_mirror.mirrored("localhost:5000/d", [("localhost", "m")]) == "localhost:5000/d"
    assert (
        registry_mirror.mirrored("a/daprd@sha256:00", [("a/daprd", "b/daprd")])
        == "b/daprd@sha256:00"
    )


def test_registry_mirror_plugin():
    environ = {
        registry_mirror.MIRROR_ENV: "ghcr.io/dapr=registry.example.internal/dapr",
        registry_mirror.PULL_SECRETS_ENV: "regcred, other",
    }
    host = PluginHost(environ=environ)
    host.register(registry_mirror, "injector-registry-mirror")
    pod = nodeapp_pod()
    pod["metadata"]["annotations"]["dapr.io/sidecar-image-pull-secrets"] = "other,annotated"
    patch = inject(host, pod)
    assert sidecar_of(patch)["image"] == "registry.example.internal/dapr/daprd:1.18.3"
    assert patch[-1] == {
        "op": "add",
        "path": "/spec/imagePullSecrets",
        "value": [{"name": "regcred"}, {"name": "other"}, {"name": "annotated"}],
    }
    pod["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
    patch = inject(host, pod)
    assert patch[-2:] == [
        {"op": "add", "path": "/spec/imagePullSecrets/-", "value": {"name": "other"}},
        {"op": "add", "path": "/spec/imagePullSecrets/-", "value": {"name": "annotated"}},
    ]
    # Settings are read once, when the plugin loads: a host without them injects plainly.
    unset = PluginHost(environ={})
    unset.register(registry_mirror, "injector-registry-mirror")
    assert inject(unset) == inject(None)


# --- pluggable components ------------------------------------------------------------------


def test_pluggable_components_in_pod_and_injected_without_clobbering():
    pod = nodeapp_pod()
    pod["metadata"]["annotations"].update(
        {"dapr.io/pluggable-components": "comp", "dapr.io/inject-pluggable-components": "true"}
    )
    pod["spec"]["containers"].append({"name": "comp", "image": "c"})
    container = {"image": "injected:1", "volumeMounts": [{"name": "scratch", "mountPath": "/s"}]}
    components = [
        {
            "metadata": {
                "name": "store",
                "annotations": {"dapr.io/component-container": json.dumps(container)},
            }
        },
        {
            "metadata": {
                "name": "dup",
                "annotations": {"dapr.io/component-container": json.dumps(container)},
            }
        },
        {
            "metadata": {
                "name": "other-app",
                "annotations": {"dapr.io/component-container": '{"image":"x"}'},
            },
            "scopes": ["someone-else"],
        },
        {"metadata": {"name": "broken", "annotations": {"dapr.io/component-container": "{nope"}}},
    ]
    patch = build_patch(
        pod, helm_config(), namespace="default", trust_anchors="", components=components
    )
    mount = {
        "name": "dapr-components-unix-domain-socket",
        "mountPath": "/tmp/dapr-components-sockets",
    }
    assert sidecar_of(patch)["volumeMounts"][-1] == mount
    paths = [op["path"] for op in patch]
    assert paths[0] == "/spec/volumes"  # the token volume
    tail = patch[paths.index("/spec/containers/0/env") :]
    assert [(op["path"], op["value"]) for op in tail] == [
        (
            "/spec/containers/0/env",
            [
                {"name": "DAPR_HTTP_PORT", "value": "3500"},
                {"name": "DAPR_GRPC_PORT", "value": "50001"},
                {"name": "APP_PROTOCOL", "value": "http"},
            ],
        ),
        ("/spec/volumes/-", {"name": "dapr-components-unix-domain-socket", "emptyDir": {}}),
        (
            "/spec/containers/1/env",
            [{"name": "DAPR_COMPONENT_SOCKETS_FOLDER", "value": "/tmp/dapr-components-sockets"}],
        ),
        ("/spec/containers/1/volumeMounts", [mount]),
        ("/spec/volumes/-", {"name": "scratch", "emptyDir": {}}),
        (
            "/spec/containers/-",
            {
                "image": "injected:1",
                "name": "store",
                "volumeMounts": [{"name": "scratch", "mountPath": "/s"}, mount],
                "env": [
                    {
                        "name": "DAPR_COMPONENT_SOCKETS_FOLDER",
                        "value": "/tmp/dapr-components-sockets",
                    }
                ],
            },
        ),
    ]


# --- fuzzing -------------------------------------------------------------------------------

_text = st.text(max_size=30)
_annotation_values = st.one_of(
    _text, st.sampled_from(["true", "0", "-1", "99999", "1Gi", "x:y,z:/p", "A=1,B=2", "''", "yes"])
)
_annotations = st.dictionaries(st.sampled_from(ANNOTATIONS), _annotation_values, max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_container = st.fixed_dictionaries(
    {"name": st.one_of(_text, _json)},
    optional={"env": _json, "volumeMounts": _json, "image": _json},
)
_pod = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"annotations": _annotations}, optional={"name": _json, "labels": _json}
        ),
        "spec": st.one_of(
            _json,
            st.fixed_dictionaries(
                {},
                optional={
                    "containers": st.one_of(_json, st.lists(_container, max_size=3)),
                    "initContainers": _json,
                    "volumes": _json,
                    "tolerations": _json,
                },
            ),
        ),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pod=_pod)
def test_fuzzed_pods_give_a_patch_error_or_a_valid_patch(pod):
    pod["metadata"]["annotations"]["dapr.io/enabled"] = "true"
    pod["metadata"]["annotations"].setdefault("dapr.io/app-id", "app")
    try:
        patch = build_patch(pod, helm_config(), namespace="default", trust_anchors=PEM)
    except PatchError as error:
        assert str(error)
        return
    json.dumps(patch)
    for op in patch:
        assert op["op"] == "add" and op["path"].startswith(("/spec/", "/metadata/"))
