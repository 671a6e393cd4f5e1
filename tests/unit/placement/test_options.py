"""Placement flags checked at start: keepalive bounds, raft peers."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from daprplane.plugins.placement.options import OptionsError, PlacementOptions, parse_peers


def _flags(**overrides: object) -> SimpleNamespace:
    values: dict[str, object] = {
        "id": "dapr-placement-0",
        "initial_cluster": ["dapr-placement-0=127.0.0.1:8201"],
        "port": 50005,
        "listen_address": "",
        "tls_enabled": False,
        "metadata_enabled": False,
        "replication_factor": 100,
        "keepalive_time": timedelta(seconds=2),
        "keepalive_timeout": timedelta(seconds=3),
        "disseminate_timeout": timedelta(seconds=8),
        "disseminate_coalesce_window": timedelta(0),
        "trust_domain": "localhost",
        "trust_anchors_file": "/x",
        "sentry_address": "s:443",
        "mode": "standalone",
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def test_defaults() -> None:
    options = PlacementOptions.from_flags(_flags(), environ={})
    assert options.grpc_address == "[::]:50005"
    assert options.namespace == "default"
    assert options.keepalive_time == 2.0 and options.keepalive_timeout == 3.0


@pytest.mark.parametrize(
    ("flag", "value", "shown"),
    [
        ("keepalive_time", timedelta(milliseconds=500), "500ms"),
        ("keepalive_time", timedelta(seconds=11), "11s"),
        ("keepalive_timeout", timedelta(minutes=1, seconds=30), "1m30s"),
        ("keepalive_timeout", timedelta(0), "0s"),
    ],
)
def test_keepalive_bounds(flag: str, value: timedelta, shown: str) -> None:
    with pytest.raises(OptionsError) as caught:
        PlacementOptions.from_flags(_flags(**{flag: value}), environ={})
    name = flag.replace("_", "-")
    assert str(caught.value) == (
        f"invalid value for {name}: value should be between 1s and 10s, got {shown}"
    )


def test_keepalive_bounds_are_inclusive() -> None:
    PlacementOptions.from_flags(
        _flags(keepalive_time=timedelta(seconds=1), keepalive_timeout=timedelta(seconds=10)),
        environ={},
    )


def test_node_must_be_a_peer() -> None:
    with pytest.raises(OptionsError) as caught:
        PlacementOptions.from_flags(
            _flags(id="p9", initial_cluster=["p0=h0:1", "bad", "p1 = h1:2"]), environ={}
        )
    assert str(caught.value) == "address for node p9 not found in raft peers [{p0 h0:1} {p1 h1:2}]"


def test_peer_entries_are_split_and_trimmed_like_dapr() -> None:
    peers = parse_peers(["a=h:1", " b = h:2 ", "c", "d=e=f", ""])
    assert [(p.id, p.address) for p in peers] == [("a", "h:1"), ("b", "h:2")]


def test_ipv6_listen_address() -> None:
    options = PlacementOptions.from_flags(_flags(listen_address="::1"), environ={"NAMESPACE": "ns"})
    assert options.grpc_address == "[::1]:50005" and options.namespace == "ns"
