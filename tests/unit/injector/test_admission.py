"""AdmissionReview parsing and answers (contract §2)."""

from __future__ import annotations

import base64
import json

import pytest

from daprplane.plugins.injector import admission
from daprplane.plugins.injector.admission import Echo, ReviewError, parse_review


def review(**request: object) -> bytes:
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "alice", "uid": "x", "groups": ["g1", "g2"]},
            "object": {"metadata": {"name": "p"}},
            **request,
        },
    }
    return json.dumps(body).encode()


def test_parses_the_fields_the_injector_uses() -> None:
    request = parse_review(review())
    assert request.echo == Echo("AdmissionReview", "admission.k8s.io/v1", "u-1")
    assert request.kind == "Pod"
    assert request.namespace == "default"
    assert request.operation == "CREATE"
    assert request.user.username == "alice"
    assert request.user.groups == ("g1", "g2")
    assert request.object == {"metadata": {"name": "p"}}


def test_v1beta1_reviews_are_read_the_same_way_and_echoed() -> None:
    body = json.loads(review())
    body["apiVersion"] = "admission.k8s.io/v1beta1"
    request = parse_review(json.dumps(body).encode())
    answer = json.loads(admission.allowed(request.echo))
    assert answer == {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1beta1",
        "response": {"uid": "u-1", "allowed": True},
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{", "couldn't decode"),
        (b"\xff\xfe", "couldn't decode"),
        (b"[]", "expected a JSON object"),
        (b"null", "expected a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"kind": 1}', "kind must be a string"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "no request"),
        (b'{"request": 3}', "request of type object"),
        (b'{"request": {"kind": "Pod"}}', "request.kind of type object"),
        (b'{"request": {"kind": {"kind": 7}}}', "request.kind.kind of type string"),
        (b'{"request": {"uid": 1, "userInfo": {"groups": "a"}}}', "groups"),
        (b'{"request": {"userInfo": {"username": []}}}', "username"),
    ],
)
def test_unusable_reviews_raise_with_a_message(body: bytes, fragment: str) -> None:
    with pytest.raises(ReviewError) as caught:
        parse_review(body)
    assert fragment in caught.value.message


def test_errors_keep_what_could_be_read_for_the_echo() -> None:
    body = (
        b'{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1",'
        b'"request":{"uid":"u","kind":[]}}'
    )
    with pytest.raises(ReviewError) as caught:
        parse_review(body)
    answer = json.loads(admission.denied(caught.value.echo, caught.value.message))
    assert answer["kind"] == "AdmissionReview"
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["response"]["uid"] == "u"
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"] == {"metadata": {}, "message": caught.value.message}


def test_answers_without_kind_omit_it_but_always_carry_uid() -> None:
    answer = json.loads(admission.allowed(Echo()))
    assert answer == {"response": {"uid": "", "allowed": True}}


def test_patch_is_base64_json_with_patch_type() -> None:
    patch = [{"op": "add", "path": "/metadata/labels/a", "value": "b"}]
    answer = json.loads(
        admission.allowed(Echo("AdmissionReview", "admission.k8s.io/v1", "u"), patch)
    )
    response = answer["response"]
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == patch
    assert list(response) == ["uid", "allowed", "patch", "patchType"]


def test_an_empty_patch_is_no_patch() -> None:
    assert "patch" not in json.loads(admission.allowed(Echo(uid="u"), []))["response"]


@pytest.mark.parametrize(
    ("pod", "enabled"),
    [
        (None, True),  # unreadable objects fall through to the patcher, which reports them
        ({}, True),
        ("text", True),
        ({"metadata": {}}, False),
        ({"metadata": {"annotations": {"dapr.io/enabled": "true"}}}, True),
        ({"metadata": {"annotations": {"dapr.io/enabled": "TRUE"}}}, True),
        ({"metadata": {"annotations": {"dapr.io/enabled": "yes"}}}, False),
        ({"metadata": {"annotations": {"dapr.io/enabled": "1"}}}, False),
        ({"metadata": {"annotations": {"dapr.io/enabled": True}}}, False),
        ({"metadata": {"annotations": "x"}}, False),
    ],
)
def test_dapr_enabled_needs_true_in_any_case(pod: object, enabled: bool) -> None:
    assert admission.dapr_enabled(pod) is enabled


def test_app_id_is_the_annotation_else_the_pod_name() -> None:
    assert (
        admission.app_id_of({"metadata": {"name": "p", "annotations": {"dapr.io/app-id": "a"}}})
        == "a"
    )
    assert admission.app_id_of({"metadata": {"name": "p"}}) == "p"
    assert (
        admission.app_id_of({"metadata": {"name": "p", "annotations": {"dapr.io/app-id": ""}}})
        == "p"
    )
    assert admission.app_id_of("junk") == ""
