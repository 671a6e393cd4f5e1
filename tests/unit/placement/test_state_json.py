"""``/placement/state`` bodies, byte for byte as Go's encoding/json writes them."""

from __future__ import annotations

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.plugins.placement.state_http import go_json, state_json


def test_empty_and_follower_bodies_are_empty_objects() -> None:
    assert state_json({}) == b"{}"
    assert state_json(None) == b"{}"


def test_namespace_with_only_actorless_streams() -> None:
    assert state_json({"default": ([], 0)}) == b'{"tables":{"default":{}}}'
    assert state_json({"default": ([], 4)}) == b'{"tables":{"default":{"version":4}}}'


def test_hosts_in_go_field_order_with_numeric_operation() -> None:
    host = placement_pb2.Host(
        name="127.0.0.1:50002",
        entities=["mytype"],
        id="app1",
        api_level=20,
        namespace="default",
        operation=placement_pb2.REPORT,
    )
    other = placement_pb2.Host(name="b", id="x", namespace="ns2", entities=["t"], port=7)
    other.version = 0
    body = state_json({"ns2": ([other], 2), "default": ([host], 1)})
    assert body == (
        b'{"tables":{"default":{"hosts":[{"name":"127.0.0.1:50002","entities":["mytype"],'
        b'"id":"app1","api_level":20,"namespace":"default","operation":1}],"version":1},'
        b'"ns2":{"hosts":[{"name":"b","port":7,"entities":["t"],"id":"x","namespace":"ns2",'
        b'"version":0}],"version":2}}}'
    )


def test_strings_escaped_like_go() -> None:
    assert (
        go_json({"k": "<a>&\b\f\\b\u2028é"})
        == '{"k":"\\u003ca\\u003e\\u0026\\u0008\\u000c\\\\b\\u2028é"}'.encode()
    )
