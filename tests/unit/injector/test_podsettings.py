"""One reading of the admitted pod per request (``PodSettings``), and one table of annotations.

The handler's questions (Dapr's pre-check, the app id, already injected?, list Components?) are
checked against the rules they had when each was read from the raw pod on its own, on pods of
every shape hypothesis can think of; the strict reading is checked to be made once and shared
with the patcher.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from daprplane.plugins import injector
from daprplane.plugins.injector import admission, annotations
from daprplane.plugins.injector.admission import AdmissionRequest, Echo, UserInfo
from daprplane.plugins.injector.authz import Authorizer, ServiceAccountMatcher
from daprplane.plugins.injector.errors import PatchError
from daprplane.plugins.injector.metrics import InjectorMetrics
from daprplane.plugins.injector.patcher import build_patch, needs_injection
from daprplane.plugins.injector.podsettings import PodSettings
from daprplane.plugins.injector.webhook import MutateHandler
from tests.unit.injector.examples import PEM, helm_config, nodeapp_pod

# -- the rules as they were written against the raw pod ----------------------------------------


def _annotations(obj: Any) -> Mapping[str, Any]:
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    found = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def precheck_rule(obj: Any) -> bool:
    if not isinstance(obj, Mapping) or not obj:
        return True
    value = _annotations(obj).get("dapr.io/enabled")
    return isinstance(value, str) and value.lower() == "true"


def app_id_rule(obj: Any) -> str:
    value = _annotations(obj).get("dapr.io/app-id")
    if isinstance(value, str) and value:
        return value
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    if isinstance(metadata, Mapping) and isinstance(metadata.get("name"), str):
        return str(metadata["name"])
    return ""


def needs_injection_rule(obj: Any) -> bool:
    if not isinstance(obj, Mapping):
        return False
    value = _annotations(obj).get("dapr.io/enabled")
    if not (isinstance(value, str) and value.isascii() and value.lower() == "true"):
        return False
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return True
    for field in ("containers", "initContainers"):
        containers = spec.get(field)
        if isinstance(containers, list) and any(
            isinstance(c, Mapping) and c.get("name") == "daprd" for c in containers
        ):
            return False
    return True


# -- pods of every shape -----------------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_enabled_values = st.sampled_from(["true", "TRUE", "True", "yes", "1", "", " true", "tRuE"])
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
_container = st.fixed_dictionaries({"name": st.sampled_from(["app", "daprd", 7, None])}) | _json
_annotation_maps = (
    st.dictionaries(
        st.sampled_from(
            ["dapr.io/enabled", "dapr.io/app-id", "dapr.io/inject-pluggable-components"]
        ),
        _enabled_values | _json,
        max_size=3,
    )
    | _json
)
_metadata = (
    st.fixed_dictionaries(
        {},
        optional={"name": st.text(max_size=6) | _json, "annotations": _annotation_maps},
    )
    | _json
)
_spec = (
    st.fixed_dictionaries(
        {},
        optional={
            "containers": st.lists(_container, max_size=3) | _json,
            "initContainers": st.lists(_container, max_size=2) | _json,
        },
    )
    | _json
)
_pods = st.fixed_dictionaries({}, optional={"metadata": _metadata, "spec": _spec}) | _json


@settings(max_examples=400, deadline=None)
@given(_pods)
def test_the_lenient_answers_follow_daprs_rules_for_any_shape(pod: Any) -> None:
    read = PodSettings(pod)
    assert read.enabled is precheck_rule(pod)
    assert read.app_id == app_id_rule(pod)
    assert read.needs_injection is needs_injection_rule(pod)
    assert read.asks_for_components is ("dapr.io/inject-pluggable-components" in _annotations(pod))
    # The module-level conveniences give the same answers.
    assert admission.dapr_enabled(pod) is read.enabled
    assert admission.app_id_of(pod) == read.app_id
    assert needs_injection(pod) is read.needs_injection


@settings(max_examples=200, deadline=None)
@given(_pods)
def test_the_strict_reading_refuses_or_builds_never_crashes(pod: Any) -> None:
    read = PodSettings(pod)
    try:
        patch = build_patch(read, helm_config(), namespace="d", trust_anchors="")
    except PatchError as error:
        assert str(error)
        return
    assert isinstance(patch, list)
    json.dumps(patch)


def test_an_unreadable_pod_counts_as_enabled_and_fails_later_with_a_clear_message() -> None:
    for pod in (None, "text", [], {}):
        assert PodSettings(pod).enabled
    with pytest.raises(PatchError, match=r"^could not unmarshal raw object: "):
        _ = PodSettings("text").view
    read = PodSettings({"metadata": {"annotations": {"dapr.io/enabled": "true", "x": 5}}})
    assert read.enabled and read.needs_injection
    with pytest.raises(PatchError, match=r"metadata\.annotations must be a map of strings"):
        build_patch(read, helm_config(), namespace="d", trust_anchors="")


def test_only_true_passes_the_precheck_though_the_patcher_takes_any_truthy_value() -> None:
    pod = nodeapp_pod()
    pod["metadata"]["annotations"]["dapr.io/enabled"] = "yes"
    read = PodSettings(pod)
    assert not read.enabled and not read.needs_injection
    # Called directly, the patcher reads the annotation with IsTruthy, as Dapr's patcher does.
    assert build_patch(read, helm_config(), namespace="d", trust_anchors="") != []


def test_components_are_asked_for_whatever_the_annotation_says() -> None:
    pod = nodeapp_pod()
    assert not PodSettings(pod).asks_for_components
    pod["metadata"]["annotations"]["dapr.io/inject-pluggable-components"] = "false"
    read = PodSettings(pod)
    assert read.asks_for_components
    assert read.sidecar(helm_config()).inject_pluggable_components is False


def test_the_strict_reading_is_made_once_and_kept() -> None:
    read = PodSettings(nodeapp_pod())
    assert read.view is read.view
    config = helm_config()
    assert read.sidecar(config) is read.sidecar(config)
    # Another injector configuration (other defaults) reads the annotations again.
    other = helm_config(NATIVE_SIDECAR_ENABLED="true")
    assert read.sidecar(other).enable_native_sidecar is True
    assert read.sidecar(config).enable_native_sidecar is False


def test_a_reading_and_the_raw_pod_give_the_same_patch() -> None:
    pod = nodeapp_pod()
    from_raw = build_patch(pod, helm_config(), namespace="default", trust_anchors=PEM)
    read = PodSettings(nodeapp_pod())
    from_reading = build_patch(read, helm_config(), namespace="default", trust_anchors=PEM)
    assert from_reading == from_raw
    assert PodSettings.of(read) is read


def _review(pod: Any) -> AdmissionRequest:
    return AdmissionRequest(
        echo=Echo("AdmissionReview", "admission.k8s.io/v1", "u1"),
        kind="Pod",
        namespace="apps",
        name="",
        operation="CREATE",
        user=UserInfo(username="system:serviceaccount:kube-system:replicaset-controller"),
        object=pod,
    )


async def test_the_handler_reads_the_pod_once_and_hands_that_reading_on() -> None:
    seen: list[tuple[Any, PodSettings]] = []

    def builder(pod: Mapping[str, Any], request: AdmissionRequest) -> list[dict[str, Any]]:
        seen.append((pod, request.pod))
        return build_patch(
            request.pod, helm_config(), namespace=request.namespace, trust_anchors=""
        )

    handler = MutateHandler(
        authorizer=Authorizer(ServiceAccountMatcher.from_settings()),
        build_patch=builder,
        metrics=InjectorMetrics(CollectorRegistry()),
        log=logging.getLogger("test.injector"),
        expected_errors=(PatchError,),
    )
    pod = nodeapp_pod()
    review = _review(pod)
    answer = json.loads(await handler.answer(review))
    assert answer["response"]["allowed"] is True and "patch" in answer["response"]
    [(raw, reading)] = seen
    assert raw is pod and reading is review.pod and reading.raw is pod
    assert review.pod.view is reading.view  # the patcher's strict reading is the request's

    # Already injected: the handler's own reading answers, and no patch is built.
    injected = nodeapp_pod()
    injected["spec"]["containers"].append({"name": "daprd"})
    answer = json.loads(await handler.answer(_review(injected)))
    assert answer["response"] == {"uid": "u1", "allowed": True}
    assert len(seen) == 1


def test_one_table_names_the_annotations() -> None:
    assert annotations.ENABLED in annotations.ANNOTATIONS
    assert annotations.APP_ID in annotations.ANNOTATIONS
    assert annotations.INJECT_PLUGGABLE_COMPONENTS in annotations.ANNOTATIONS
    assert annotations.annotation_of("grpc_port") == "dapr.io/grpc-port"
    assert annotations.annotation_of("enabled") == annotations.ENABLED
    # No other module of the injector spells an annotation the table reads.
    package = Path(injector.__file__).parent
    spelt = re.compile(r'"(dapr\.io/[a-z0-9-]+)"')
    for module in package.glob("*.py"):
        if module.name == "annotations.py":
            continue
        names = set(spelt.findall(module.read_text())) & set(annotations.ANNOTATIONS)
        # patcher.py writes the app id as a label, which is not an annotation read.
        names -= {"dapr.io/app-id"} if module.name == "patcher.py" else set()
        assert not names, f"{module.name} spells {sorted(names)}; use annotations.py's names"
