"""Tables built from shared per-host encodings: the same message as built field by field.

The reference below builds ``PlacementTables`` the plain protobuf way (every host copied under
each of its types); the encoded tables must decode to exactly that, for any hosts.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.plugins.placement.tables import (
    LOCK,
    UPDATE,
    EncodedTables,
    Order,
    build_tables,
    observed_tables,
)
from tests.unit.placement.machine import host


def reference(
    hosts: list[placement_pb2.Host], version: int, replication_factor: int
) -> placement_pb2.PlacementTables:
    tables = placement_pb2.PlacementTables(
        version=str(version), replication_factor=replication_factor
    )
    for h in hosts:
        for entity in h.entities:
            tables.entries[entity].load_map[h.name].CopyFrom(h)
    return tables


_hosts = st.lists(
    st.builds(
        placement_pb2.Host,
        name=st.sampled_from(["a:1", "b:1", "c:1", "", "ü:1", "x" * 200]),
        id=st.text(max_size=5),
        namespace=st.sampled_from(["default", "other"]),
        entities=st.lists(st.text(max_size=150), max_size=6),
        api_level=st.integers(0, 2**32 - 1),
        port=st.integers(-(2**63), 2**63 - 1),
        operation=st.sampled_from([0, 1]),
    ),
    max_size=6,
)


@given(hosts=_hosts, version=st.integers(0, 2**64 - 1), rf=st.integers(0, 2**40))
def test_encoded_tables_decode_to_the_protobuf_built_tables(
    hosts: list[placement_pb2.Host], version: int, rf: int
) -> None:
    tables = build_tables(hosts, version, rf)
    expected = reference(hosts, version, rf)
    assert tables.message() == expected
    assert tables.wire_size == len(b"".join(tables.pieces()))
    order = placement_pb2.PlacementOrder.FromString(Order(UPDATE, version, tables).wire)
    assert order == placement_pb2.PlacementOrder(
        operation="update", version=version, tables=expected
    )
    observed = observed_tables(tables)
    assert observed == observed_tables(expected)
    assert {t: sorted(v.load_map) for t, v in tables.entries.items()} == {
        t: sorted(v.load_map) for t, v in expected.entries.items()
    }


def test_orders_without_tables_are_the_plain_messages() -> None:
    for version in (0, 1, 300, 2**64 - 1):
        wire = Order(LOCK, version).wire
        assert (
            wire
            == placement_pb2.PlacementOrder(operation="lock", version=version).SerializeToString()
        )


def test_a_host_is_encoded_once_and_shared_by_all_its_types() -> None:
    big = host("big:1", [f"T{i:04d}" for i in range(1000)])
    tables = EncodedTables([big, host("small:1", ["T0000", "S"])], 7, 100)
    entries = tables._types
    shared = {id(entries[t]["big:1"]) for t in big.entities}
    assert len(shared) == 1  # one entry object (and one bytes object) for 1,000 types
    assert entries["T0000"]["small:1"] is entries["S"]["small:1"]
    # The entries view shares the stored Host; observers get one copy per host.
    assert tables.entries["T0001"].load_map["big:1"] is big
    observed = tables.observed()
    assert observed["T0001"]["big:1"] is observed["T0999"]["big:1"]
    assert observed["T0001"]["big:1"] is not big and observed["T0001"]["big:1"] == big
