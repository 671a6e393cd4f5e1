"""Subscription conversion between v1alpha1 and v2alpha1, and ConversionReview answers."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daprplane.plugins.operator.conversion import (
    V1ALPHA1,
    V2ALPHA1,
    ConversionError,
    review_response,
    to_v1alpha1,
    to_v2alpha1,
)

METADATA = {
    "name": "orders",
    "namespace": "shop",
    "uid": "5d3c0c4e-8f0a-4d8e-9d55-6a1f7f0c2b11",
    "resourceVersion": "42",
    "labels": {"team": "a"},
    "annotations": {"note": "x"},
}
BULK = {"enabled": True, "maxMessagesCount": 100, "maxAwaitDurationMs": 40}


def v1_subscription(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": V1ALPHA1,
        "kind": "Subscription",
        "metadata": copy.deepcopy(METADATA),
        "spec": {
            "pubsubname": "pubsub",
            "topic": "orders",
            "route": "/orders",
            "metadata": {"rawPayload": "true"},
            "deadLetterTopic": "poison",
            "bulkSubscribe": dict(BULK),
            **spec,
        },
        "scopes": ["app1", "app2"],
    }


def v2_subscription(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": V2ALPHA1,
        "kind": "Subscription",
        "metadata": copy.deepcopy(METADATA),
        "spec": {
            "pubsubname": "pubsub",
            "topic": "orders",
            "routes": {
                "rules": [{"match": 'event.type == "widget"', "path": "/widgets"}],
                "default": "/orders",
            },
            "metadata": {"rawPayload": "true"},
            "deadLetterTopic": "poison",
            "bulkSubscribe": dict(BULK),
            **spec,
        },
        "scopes": ["app1", "app2"],
    }


def review(desired: Any, *objects: Any, uid: Any = "uid-1") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": list(objects)},
    }


# -- single objects ------------------------------------------------------------------------------


def test_v2_to_v1_keeps_everything_but_the_rules() -> None:
    assert to_v1alpha1(v2_subscription()) == {
        "apiVersion": V1ALPHA1,
        "kind": "Subscription",
        "metadata": METADATA,
        "spec": {
            "pubsubname": "pubsub",
            "topic": "orders",
            "route": "/orders",
            "metadata": {"rawPayload": "true"},
            "deadLetterTopic": "poison",
            "bulkSubscribe": BULK,
        },
        "scopes": ["app1", "app2"],
    }


def test_v1_to_v2_makes_the_route_the_default() -> None:
    assert to_v2alpha1(v1_subscription()) == {
        "apiVersion": V2ALPHA1,
        "kind": "Subscription",
        "metadata": METADATA,
        "spec": {
            "pubsubname": "pubsub",
            "topic": "orders",
            "routes": {"default": "/orders"},
            "metadata": {"rawPayload": "true"},
            "deadLetterTopic": "poison",
            "bulkSubscribe": BULK,
        },
        "scopes": ["app1", "app2"],
    }


def test_round_trip_from_v1_is_lossless() -> None:
    original = v1_subscription()
    assert to_v1alpha1(to_v2alpha1(original)) == original


def test_round_trip_from_v2_loses_the_rules() -> None:
    expected = v2_subscription()
    expected["spec"]["routes"] = {"default": "/orders"}
    assert to_v2alpha1(to_v1alpha1(v2_subscription())) == expected


def test_absent_fields_stay_absent() -> None:
    minimal_v2 = {
        "apiVersion": V2ALPHA1,
        "kind": "Subscription",
        "metadata": {"name": "m"},
        "spec": {"pubsubname": "p", "topic": "t", "routes": {"rules": []}},
    }
    assert to_v1alpha1(minimal_v2) == {
        "apiVersion": V1ALPHA1,
        "kind": "Subscription",
        "metadata": {"name": "m"},
        "spec": {"pubsubname": "p", "topic": "t"},
    }
    minimal_v1 = {
        "apiVersion": V1ALPHA1,
        "kind": "Subscription",
        "spec": {"pubsubname": "p", "topic": "t"},
    }
    # routes is required in v2alpha1, so it exists, but nothing is invented inside it.
    assert to_v2alpha1(minimal_v1) == {
        "apiVersion": V2ALPHA1,
        "kind": "Subscription",
        "spec": {"pubsubname": "p", "topic": "t", "routes": {}},
    }
    no_spec = {"apiVersion": V1ALPHA1, "kind": "Subscription", "metadata": {"name": "m"}}
    assert to_v2alpha1(no_spec) == {**no_spec, "apiVersion": V2ALPHA1}
    assert to_v1alpha1({**no_spec, "apiVersion": V2ALPHA1}) == no_spec


def test_unknown_fields_are_carried_over() -> None:
    source = v1_subscription(futureField={"x": 1})
    source["status"] = {"observed": 1}
    converted = to_v2alpha1(source)
    assert converted["spec"]["futureField"] == {"x": 1}
    assert converted["status"] == {"observed": 1}


@pytest.mark.parametrize(
    ("convert", "source"), [(to_v1alpha1, v1_subscription()), (to_v2alpha1, v2_subscription())]
)
def test_converting_to_the_same_version_returns_an_equal_copy(convert: Any, source: Any) -> None:
    result = convert(source)
    assert result == source
    result["spec"]["metadata"]["rawPayload"] = "false"
    result["metadata"]["labels"]["team"] = "b"
    assert source["spec"]["metadata"]["rawPayload"] == "true"
    assert source["metadata"]["labels"]["team"] == "a"


def test_conversion_does_not_modify_its_input() -> None:
    source = v2_subscription()
    snapshot = copy.deepcopy(source)
    result = to_v1alpha1(source)
    result["spec"]["bulkSubscribe"]["enabled"] = False
    assert source == snapshot
    source = v1_subscription()
    to_v2alpha1(source)["spec"]["routes"]["default"] = "/other"
    assert source == v1_subscription()


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "expected a JSON object, got array"),
        ("x", "expected a JSON object, got string"),
        ({"apiVersion": V1ALPHA1, "kind": "Component"}, "expected kind Subscription"),
        ({"apiVersion": V1ALPHA1}, "expected kind Subscription, got None"),
        ({"apiVersion": "dapr.io/v3", "kind": "Subscription"}, "unsupported apiVersion"),
        ({"apiVersion": "other.io/v1alpha1", "kind": "Subscription"}, "unsupported apiVersion"),
        ({"kind": "Subscription"}, "unsupported apiVersion None"),
        ({"apiVersion": V2ALPHA1, "kind": "Subscription", "spec": []}, "spec must be an object"),
        (
            {"apiVersion": V2ALPHA1, "kind": "Subscription", "spec": {"routes": "/x"}},
            "spec.routes must be an object, got string",
        ),
    ],
)
def test_bad_objects_raise_conversion_error(obj: Any, message: str) -> None:
    with pytest.raises(ConversionError, match=message.replace("(", r"\(")):
        to_v1alpha1(obj)


# -- ConversionReview ----------------------------------------------------------------------------


def test_review_converts_every_object_to_the_desired_version() -> None:
    answer = review_response(review(V2ALPHA1, v1_subscription(), v2_subscription()))
    assert answer == {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": {
            "uid": "uid-1",
            "convertedObjects": [to_v2alpha1(v1_subscription()), v2_subscription()],
            "result": {"status": "Success"},
        },
    }
    answer = review_response(review(V1ALPHA1, v1_subscription(), v2_subscription()))
    converted = answer["response"]["convertedObjects"]
    assert [o["apiVersion"] for o in converted] == [V1ALPHA1, V1ALPHA1]
    assert converted[1]["spec"]["route"] == "/orders"
    assert "routes" not in converted[1]["spec"]


def test_review_with_no_objects_succeeds_empty() -> None:
    for objects in ([], None):
        body = review(V1ALPHA1)
        body["request"]["objects"] = objects
        response = review_response(body)["response"]
        assert response == {"uid": "uid-1", "convertedObjects": [], "result": {"status": "Success"}}


def test_review_answer_is_plain_json() -> None:
    answer = review_response(review(V2ALPHA1, v1_subscription()))
    assert json.loads(json.dumps(answer)) == answer


def test_v1beta1_review_is_answered_in_kind() -> None:
    body = {**review(V1ALPHA1, v2_subscription()), "apiVersion": "apiextensions.k8s.io/v1beta1"}
    answer = review_response(body)
    assert answer["apiVersion"] == "apiextensions.k8s.io/v1beta1"
    assert answer["response"]["result"] == {"status": "Success"}


def failure(answer: dict[str, Any]) -> tuple[str | None, str]:
    assert answer["apiVersion"] == "apiextensions.k8s.io/v1"
    assert answer["kind"] == "ConversionReview"
    response = answer["response"]
    assert "convertedObjects" not in response
    assert response["result"]["status"] == "Failure"
    return response.get("uid"), response["result"]["message"]


@pytest.mark.parametrize(
    ("body", "uid", "message"),
    [
        (None, None, "conversion review must be a JSON object, got null"),
        ([1], None, "conversion review must be a JSON object, got array"),
        ("review", None, "conversion review must be a JSON object, got string"),
        ({}, None, "conversion review has no request"),
        ({"request": None}, None, "conversion review has no request"),
        ({"request": []}, None, "conversion review has no request"),
        ({"request": {"desiredAPIVersion": V1ALPHA1}}, None, "conversion request has no uid"),
        (review(V1ALPHA1, uid=""), None, "conversion request has no uid"),
        (review(V1ALPHA1, uid=7), None, "conversion request has no uid"),
        (
            {**review(V1ALPHA1), "kind": "AdmissionReview"},
            "uid-1",
            "expected kind ConversionReview, got 'AdmissionReview'",
        ),
        (
            {**review(V1ALPHA1), "apiVersion": "v1"},
            "uid-1",
            "unsupported ConversionReview apiVersion 'v1'",
        ),
        (
            review("dapr.io/v3alpha1", v1_subscription()),
            "uid-1",
            "unsupported desiredAPIVersion 'dapr.io/v3alpha1': "
            "expected dapr.io/v1alpha1 or dapr.io/v2alpha1",
        ),
        (review(None), "uid-1", "unsupported desiredAPIVersion None"),
        (review(["dapr.io/v1alpha1"]), "uid-1", "unsupported desiredAPIVersion"),
        (
            {"request": {"uid": "u", "desiredAPIVersion": V1ALPHA1, "objects": {"a": 1}}},
            "u",
            "request.objects must be an array, got object",
        ),
        (
            review(V1ALPHA1, v2_subscription(), {"apiVersion": V1ALPHA1, "kind": "Component"}),
            "uid-1",
            "cannot convert object 1 to dapr.io/v1alpha1: expected kind Subscription, "
            "got 'Component'",
        ),
        (
            review(V2ALPHA1, {"apiVersion": "dapr.io/v9", "kind": "Subscription"}),
            "uid-1",
            "cannot convert object 0 to dapr.io/v2alpha1: unsupported apiVersion 'dapr.io/v9'",
        ),
        (
            review(V2ALPHA1, "not an object"),
            "uid-1",
            "cannot convert object 0 to dapr.io/v2alpha1: expected a JSON object, got string",
        ),
        (review(V2ALPHA1, None), "uid-1", "expected a JSON object, got null"),
    ],
)
def test_bad_reviews_get_a_failure(body: Any, uid: str | None, message: str) -> None:
    got_uid, got_message = failure(review_response(body))
    assert got_uid == uid
    assert message in got_message


def test_deeply_nested_objects_fail_instead_of_raising() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    obj = v1_subscription(metadata={"deep": deep})
    _, message = failure(review_response(review(V2ALPHA1, obj)))
    assert "nested too deeply" in message


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=30,
)
versions = st.sampled_from([V1ALPHA1, V2ALPHA1])
specs = st.fixed_dictionaries(
    {},
    optional={
        "pubsubname": st.text(),
        "topic": st.text(),
        "route": json_values,
        "routes": st.one_of(
            json_values,
            st.fixed_dictionaries({}, optional={"default": json_values, "rules": json_values}),
        ),
        "metadata": json_values,
        "bulkSubscribe": json_values,
    },
)
subscriptions = st.fixed_dictionaries(
    {"apiVersion": versions, "kind": st.just("Subscription")},
    optional={
        "metadata": json_values,
        "spec": st.one_of(specs, json_values),
        "scopes": json_values,
    },
)
objects = st.lists(st.one_of(subscriptions, json_values), max_size=3)
well_formed_reviews = st.fixed_dictionaries(
    {
        "apiVersion": st.just("apiextensions.k8s.io/v1"),
        "kind": st.just("ConversionReview"),
        "request": st.fixed_dictionaries(
            {
                "uid": st.text(min_size=1),
                "desiredAPIVersion": versions,
                "objects": st.lists(subscriptions, max_size=3) | objects,
            }
        ),
    }
)
loose_reviews = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": st.one_of(st.just("apiextensions.k8s.io/v1"), json_values),
        "kind": st.one_of(st.just("ConversionReview"), json_values),
        "request": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "uid": st.one_of(st.text(), json_values),
                    "desiredAPIVersion": st.one_of(versions, json_values),
                    "objects": st.one_of(objects, json_values),
                },
            ),
        ),
    },
)
reviews = st.one_of(json_values, loose_reviews, well_formed_reviews)


@given(reviews)
def test_review_response_never_raises(body: Any) -> None:
    snapshot = json.dumps(body)
    answer = review_response(body)
    assert json.dumps(body) == snapshot  # the input is not modified
    assert answer["kind"] == "ConversionReview"
    assert answer["apiVersion"] in ("apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1")
    response = answer["response"]
    assert response["result"]["status"] in ("Success", "Failure")
    json.dumps(answer, allow_nan=False)
    if response["result"]["status"] == "Success":
        request = body["request"]
        assert response["uid"] == request["uid"]
        desired = request["desiredAPIVersion"]
        converted = response["convertedObjects"]
        assert len(converted) == len(request.get("objects") or [])
        assert all(o["apiVersion"] == desired for o in converted)
        assert all(o["kind"] == "Subscription" for o in converted)
        for source, result in zip(request.get("objects") or [], converted, strict=True):
            if source["apiVersion"] == desired:
                assert result == source
            elif isinstance(result.get("spec"), dict):
                routed = "routes" if desired == V2ALPHA1 else "route"
                other = "route" if desired == V2ALPHA1 else "routes"
                assert other not in result["spec"]
                assert routed in result["spec"] or routed == "route"
    else:
        assert isinstance(response["result"]["message"], str)
        assert response["result"]["message"]
