"""The contract's worked example (§4.6), operation for operation."""

from __future__ import annotations

import json
from pathlib import Path

from daprplane.plugins.injector.patcher import build_patch
from tests.unit.injector.examples import PEM, helm_config, nodeapp_pod

# The decoded patch of §4.6, verbatim from the contract.
EXPECTED = json.loads((Path(__file__).parent / "worked_example_patch.json").read_text())


def test_worked_example_is_reproduced_exactly():
    config, pod = helm_config(), nodeapp_pod()
    patch = build_patch(pod, config, namespace="default", trust_anchors=PEM)
    assert [(op["op"], op["path"]) for op in patch] == [(op["op"], op["path"]) for op in EXPECTED]
    assert patch == EXPECTED


def test_pod_with_service_account_volume_gets_an_append():
    config, pod = helm_config(), nodeapp_pod()
    pod["spec"]["volumes"] = [{"name": "kube-api-access-x", "projected": {"sources": []}}]
    patch = build_patch(pod, config, namespace="default", trust_anchors=PEM)
    assert patch[0] == {"op": "add", "path": "/spec/volumes/-", "value": EXPECTED[0]["value"][0]}
    assert patch[1:] == EXPECTED[1:]


def test_injector_without_token_file_adds_no_volume():
    config, pod = helm_config(), nodeapp_pod()
    patch = build_patch(
        pod, config, namespace="default", trust_anchors=PEM, token_volume_enabled=False
    )
    sidecar = dict(EXPECTED[1]["value"])
    del sidecar["volumeMounts"]
    assert patch == [{"op": "add", "path": "/spec/containers/-", "value": sidecar}, *EXPECTED[2:]]


def test_patch_is_json_serialisable_with_op_path_value_keys():
    config, pod = helm_config(), nodeapp_pod()
    patch = build_patch(pod, config, namespace="default", trust_anchors=PEM)
    assert all(list(op) == ["op", "path", "value"] for op in patch)
    json.dumps(patch)
