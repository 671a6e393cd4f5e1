"""Payload shapes and bytes: what Go's encoding/json writes for the typed Dapr structs."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daprplane.plugins.operator.kinds import DAPR_KINDS
from daprplane.plugins.operator.payloads import encode, go_shape, strip_type_meta, with_type_meta

EMPTY_REF = {"name": "", "key": ""}

# --- go_shape: Component ----------------------------------------------------------------------


def test_bare_component_gets_every_always_written_field() -> None:
    obj = {"metadata": {"name": "statestore", "namespace": "default"}}
    assert go_shape("Component", obj) == {
        "metadata": {"name": "statestore", "namespace": "default", "creationTimestamp": None},
        "spec": {
            "type": "",
            "version": "",
            "ignoreErrors": False,
            "metadata": None,
            "initTimeout": "",
        },
        "auth": {"secretStore": ""},
    }


def test_api_server_component_gets_go_shape() -> None:
    obj = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": "statestore",
            "namespace": "default",
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "resourceVersion": "42",
        },
        "spec": {
            "type": "state.redis",
            "version": "v1",
            "metadata": [
                {"name": "redisHost", "value": "redis:6379"},
                {"name": "redisPassword", "secretKeyRef": {"name": "redis", "key": "password"}},
                {"name": "fromEnv", "envRef": "REDIS_USER"},
                {"name": "noEnv", "value": 3, "envRef": ""},
            ],
        },
        "scopes": ["app1"],
    }
    shaped = go_shape("Component", obj)
    assert shaped == {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": obj["metadata"],
        "spec": {
            "type": "state.redis",
            "version": "v1",
            "ignoreErrors": False,
            "metadata": [
                {"name": "redisHost", "value": "redis:6379", "secretKeyRef": EMPTY_REF},
                {
                    "name": "redisPassword",
                    "secretKeyRef": {"name": "redis", "key": "password"},
                    "value": None,
                },
                {
                    "name": "fromEnv",
                    "envRef": "REDIS_USER",
                    "value": None,
                    "secretKeyRef": EMPTY_REF,
                },
                {"name": "noEnv", "value": 3, "secretKeyRef": EMPTY_REF},
            ],
            "initTimeout": "",
        },
        "scopes": ["app1"],
        "auth": {"secretStore": ""},
    }


def test_component_keeps_set_fields_and_fills_nulls_with_zero_values() -> None:
    obj = {
        "metadata": None,
        "spec": {
            "type": None,
            "version": "v2",
            "ignoreErrors": True,
            "metadata": [],
            "initTimeout": "5m",
            "futureField": {"kept": True},
        },
        "auth": {"secretStore": "vault", "other": 1},
    }
    shaped = go_shape("Component", obj)
    assert shaped["metadata"] == {"creationTimestamp": None}
    assert shaped["spec"] == {
        "type": "",
        "version": "v2",
        "ignoreErrors": True,
        "metadata": [],
        "initTimeout": "5m",
        "futureField": {"kept": True},
    }
    assert shaped["auth"] == {"secretStore": "vault", "other": 1}


@pytest.mark.parametrize("auth", [None, {}, {"secretStore": None}])
def test_component_auth_always_has_a_secret_store(auth: Any) -> None:
    assert go_shape("Component", {"auth": auth})["auth"] == {"secretStore": ""}


@pytest.mark.parametrize(("scopes", "kept"), [([], False), (None, False), (["a"], True)])
def test_component_scopes_are_omitted_when_empty(scopes: Any, kept: bool) -> None:
    assert ("scopes" in go_shape("Component", {"scopes": scopes})) is kept


def test_name_value_pair_secret_key_ref_is_completed() -> None:
    pairs = [
        {"name": "a", "secretKeyRef": {"name": "s"}},
        {"name": "b", "secretKeyRef": {"key": "k"}},
        {"name": "c", "secretKeyRef": {"name": None, "key": None}},
        {"name": "d", "secretKeyRef": None, "value": {"nested": [1, 2]}},
    ]
    shaped = go_shape("Component", {"spec": {"metadata": pairs}})["spec"]["metadata"]
    assert [pair["secretKeyRef"] for pair in shaped] == [
        {"name": "s", "key": ""},
        {"key": "k", "name": ""},
        EMPTY_REF,
        EMPTY_REF,
    ]
    assert [pair["value"] for pair in shaped] == [None, None, None, {"nested": [1, 2]}]


# --- go_shape: other kinds --------------------------------------------------------------------


def test_http_endpoint_gets_auth_and_pair_shapes_only() -> None:
    obj = {
        "metadata": {"name": "ext"},
        "spec": {
            "baseUrl": "https://example.com",
            "headers": [{"name": "X-A", "value": "1"}],
            "clientTLS": {"rootCA": {"secretKeyRef": {"name": "ca"}}},
        },
        "scopes": [],
    }
    assert go_shape("HTTPEndpoint", obj) == {
        "metadata": {"name": "ext", "creationTimestamp": None},
        "spec": {
            "baseUrl": "https://example.com",
            "headers": [{"name": "X-A", "value": "1", "secretKeyRef": EMPTY_REF}],
            # Client TLS documents are not NameValuePairs: untouched.
            "clientTLS": {"rootCA": {"secretKeyRef": {"name": "ca"}}},
        },
        "auth": {"secretStore": ""},
    }


def test_http_endpoint_without_headers_gains_no_headers_field() -> None:
    shaped = go_shape("HTTPEndpoint", {"spec": {"baseUrl": "u"}})
    assert shaped["spec"] == {"baseUrl": "u"}


def test_configuration_otel_headers_get_pair_shapes_and_nothing_else_changes() -> None:
    obj = {
        "metadata": {"name": "appconfig", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "tracing": {
                "samplingRate": "1",
                "otel": {
                    "endpointAddress": "otel:4317",
                    "headers": [{"name": "k", "value": "v", "envRef": ""}],
                },
            },
            "metric": {"enabled": True},
        },
        "scopes": [],
    }
    shaped = go_shape("Configuration", obj)
    assert shaped == {
        "metadata": obj["metadata"],
        "spec": {
            "tracing": {
                "samplingRate": "1",
                "otel": {
                    "endpointAddress": "otel:4317",
                    "headers": [{"name": "k", "value": "v", "secretKeyRef": EMPTY_REF}],
                },
            },
            "metric": {"enabled": True},
        },
        # Configuration has no scopes field: nothing to omit, so the input's key is left as is.
        "scopes": [],
    }
    assert "auth" not in shaped


@pytest.mark.parametrize(
    "kind", ["Subscription", "Resiliency", "MCPServer", "WorkflowAccessPolicy"]
)
def test_other_dapr_kinds_get_timestamp_and_scope_rules_only(kind: str) -> None:
    obj = {"metadata": {"name": "x"}, "spec": {"anything": [{"name": "n"}]}, "scopes": []}
    assert go_shape(kind, obj) == {
        "metadata": {"name": "x", "creationTimestamp": None},
        "spec": {"anything": [{"name": "n"}]},
    }


def test_absent_metadata_still_gets_a_creation_timestamp() -> None:
    assert go_shape("Resiliency", {}) == {"metadata": {"creationTimestamp": None}}


@pytest.mark.parametrize("kind", ["Pod", "", "component"])
def test_unknown_kind_is_a_shallow_copy(kind: str) -> None:
    obj = {"metadata": {"name": "x"}, "scopes": [], "spec": {}}
    shaped = go_shape(kind, obj)
    assert shaped == obj
    assert shaped is not obj
    assert shaped["metadata"] is obj["metadata"]


def test_ill_typed_fields_pass_through() -> None:
    obj = {"metadata": "text", "spec": 3, "auth": "x", "scopes": "y"}
    assert go_shape("Component", obj) == obj
    assert go_shape("HTTPEndpoint", obj) == obj
    odd_config = {"metadata": {}, "spec": {"tracing": {"otel": {"headers": "h"}}}}
    assert go_shape("Configuration", odd_config)["spec"] == odd_config["spec"]


def test_ill_typed_pairs_are_left_as_they_are() -> None:
    pairs = [1, None, "x", {"secretKeyRef": "odd", "envRef": 0}]
    shaped = go_shape("Component", {"spec": {"metadata": pairs}})["spec"]["metadata"]
    assert shaped == [1, None, "x", {"secretKeyRef": "odd", "envRef": 0, "value": None}]


def test_go_shape_never_mutates_the_input() -> None:
    obj = {
        "metadata": {"name": "x"},
        "spec": {"metadata": [{"name": "a", "secretKeyRef": {"name": "s"}, "envRef": ""}]},
        "auth": {},
        "scopes": [],
    }
    before = copy.deepcopy(obj)
    go_shape("Component", obj)
    assert obj == before


# --- TypeMeta ---------------------------------------------------------------------------------


def test_strip_type_meta() -> None:
    obj = {"kind": "Component", "apiVersion": "dapr.io/v1alpha1", "metadata": {"name": "x"}}
    stripped = strip_type_meta(obj)
    assert stripped == {"metadata": {"name": "x"}}
    assert "kind" in obj
    assert strip_type_meta({"spec": {}}) == {"spec": {}}


def test_with_type_meta_adds_or_replaces() -> None:
    bare = {"metadata": {"name": "x"}}
    assert with_type_meta(bare, "dapr.io/v1alpha1", "Component") == {
        "kind": "Component",
        "apiVersion": "dapr.io/v1alpha1",
        "metadata": {"name": "x"},
    }
    assert bare == {"metadata": {"name": "x"}}
    stale = {"apiVersion": "dapr.io/v1alpha1", "kind": "Subscription", "spec": {}}
    assert with_type_meta(stale, "dapr.io/v2alpha1", "Subscription") == {
        "kind": "Subscription",
        "apiVersion": "dapr.io/v2alpha1",
        "spec": {},
    }
    assert stale["apiVersion"] == "dapr.io/v1alpha1"


# --- encode -----------------------------------------------------------------------------------


def test_encode_is_compact_utf8_in_key_order() -> None:
    assert encode({"b": [1, 2], "a": {"c": None, "d": True}, "é": "ü"}) == (
        '{"b":[1,2],"a":{"c":null,"d":true},"é":"ü"}'.encode()
    )


def test_encode_secret_value_like_go() -> None:
    assert encode({"value": "aHVudGVyMQ=="}) == b'{"value":"aHVudGVyMQ=="}'


def test_encode_escapes_html_characters_like_go() -> None:
    assert encode({"<k>": "a<b>&c"}) == b'{"\\u003ck\\u003e":"a\\u003cb\\u003e\\u0026c"}'


def test_encode_escapes_line_and_paragraph_separators() -> None:
    assert encode("a\u2028b\u2029c") == b'"a\\u2028b\\u2029c"'


def test_encode_control_characters_like_go() -> None:
    assert encode('\x00\x01\x1f\b\f\n\r\t"\\\x7f') == (
        b'"\\u0000\\u0001\\u001f\\b\\f\\n\\r\\t\\"\\\\\x7f"'
    )


def test_encode_lone_surrogate_as_replacement_escape() -> None:
    # UTF-8 cannot hold a lone surrogate; Go writes such input as the escape \ufffd.
    assert encode(json.loads('"x\\ud800y"')) == b'"x\\ufffdy"'
    assert encode("😀") == '"😀"'.encode()


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (-0.0, "-0"),
        (0.5, "0.5"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (2.5e-10, "2.5e-10"),
        (5e-324, "5e-324"),
        (123456.789, "123456.789"),
        (10, "10"),
        (-(2**63), "-9223372036854775808"),
    ],
)
def test_encode_numbers_like_go(number: float, text: str) -> None:
    assert encode(number) == text.encode()


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_encode_rejects_what_json_cannot_hold(number: float) -> None:
    with pytest.raises(ValueError, match="unsupported value"):
        encode({"x": number})


def test_encode_rejects_non_json_types() -> None:
    with pytest.raises(TypeError):
        encode({1: "x"})
    with pytest.raises(TypeError):
        encode({"x": object()})


def test_shaped_component_bytes_decode_to_go_struct_fields() -> None:
    shaped = go_shape(
        "Component",
        {"metadata": {"name": "c"}, "spec": {"type": "state.in-memory", "version": "v1"}},
    )
    assert encode(shaped) == (
        b'{"metadata":{"name":"c","creationTimestamp":null},'
        b'"spec":{"type":"state.in-memory","version":"v1","ignoreErrors":false,'
        b'"metadata":null,"initTimeout":""},"auth":{"secretStore":""}}'
    )


# --- Any input --------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
pairs = json_values | st.lists(
    json_values
    | st.fixed_dictionaries(
        {},
        optional={
            "name": json_values,
            "value": json_values,
            "secretKeyRef": json_values
            | st.fixed_dictionaries({}, optional={"name": json_scalars, "key": json_scalars}),
            "envRef": json_values,
        },
    ),
    max_size=3,
)
objects = st.dictionaries(st.text(max_size=6), json_values, max_size=3) | st.fixed_dictionaries(
    {},
    optional={
        "kind": json_scalars,
        "apiVersion": json_scalars,
        "metadata": json_values,
        "auth": json_values | st.fixed_dictionaries({}, optional={"secretStore": json_scalars}),
        "scopes": json_values,
        "spec": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "metadata": pairs,
                "headers": pairs,
                "ignoreErrors": json_scalars,
                "tracing": json_values
                | st.fixed_dictionaries(
                    {},
                    optional={
                        "otel": json_values | st.fixed_dictionaries({}, optional={"headers": pairs})
                    },
                ),
            },
        ),
    },
)
kinds = st.sampled_from([kind.kind for kind in DAPR_KINDS]) | st.text(max_size=8)


def same_json(left: Any, right: Any) -> bool:
    """Equal as JSON: a float written without a fraction comes back as an int."""
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return float(left) == float(right)
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_json(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same_json, left, right))
    return bool(left == right)


@given(kind=kinds, obj=objects)
def test_go_shape_never_raises_or_mutates_and_is_stable(kind: str, obj: dict) -> None:
    before = copy.deepcopy(obj)
    shaped = go_shape(kind, obj)
    assert obj == before
    assert shaped is not obj
    # Shaping what is already shaped changes nothing.
    assert go_shape(kind, shaped) == shaped
    assert strip_type_meta(shaped).keys() == shaped.keys() - {"kind", "apiVersion"}
    assert with_type_meta(shaped, "v", "K")["kind"] == "K"
    assert obj == before


@given(value=json_values | objects)
def test_encode_round_trips_and_is_html_safe(value: Any) -> None:
    encoded = encode(value)
    text = encoded.decode("utf-8")
    assert same_json(json.loads(text), value)
    assert not any(char in text for char in "<>&\u2028\u2029")
