"""The client state machine against daprd's rules (contract §2.7, §2.8), fed PlacementOrders."""

from __future__ import annotations

import pytest

from daprplane._proto.placement.v1 import placement_pb2 as pb
from daprplane.plugins.placement.client import (
    ActorTypeNotFoundError,
    ClientProtocol,
    Phase,
    ProtocolError,
)
from daprplane.ring import implementation

APP, NS, NAME = "app-a", "default", "10.0.0.1:50002"


@pytest.fixture(params=["rust", "python"])
def protocol(request: pytest.FixtureRequest) -> ClientProtocol:
    return ClientProtocol(
        app_id=APP, namespace=NS, host_name=NAME, ring_impl=implementation(request.param)
    )


def host(name: str, app: str, *types: str) -> pb.Host:
    return pb.Host(
        name=name, id=app, api_level=20, namespace=NS, entities=list(types), operation=pb.REPORT
    )


def tables(version: int, rf: int = 100, **types: list[pb.Host]) -> pb.PlacementTables:
    return pb.PlacementTables(
        version=str(version),
        replication_factor=rf,
        entries={t: pb.PlacementTable(load_map={h.name: h for h in hs}) for t, hs in types.items()},
    )


def lock(v: int) -> pb.PlacementOrder:
    return pb.PlacementOrder(operation="lock", version=v)


def update(v: int, table: pb.PlacementTables) -> pb.PlacementOrder:
    return pb.PlacementOrder(operation="update", version=v, tables=table)


def unlock(v: int) -> pb.PlacementOrder:
    return pb.PlacementOrder(operation="unlock", version=v)


def ack(operation: int, v: int) -> pb.Host:
    return pb.Host(operation=operation, version=v, namespace=NS, id=APP)


def test_report_is_exactly_what_daprd_sends(protocol: ClientProtocol) -> None:
    report = protocol.report(["T", "U"])
    assert report == pb.Host(
        name=NAME, id=APP, api_level=20, namespace=NS, entities=["T", "U"], operation=pb.REPORT
    )
    assert not report.HasField("version")
    assert report.port == 0 and report.load == 0 and report.pod == ""


def test_actorless_report_has_no_entities(protocol: ClientProtocol) -> None:
    assert list(protocol.report([]).entities) == []


def test_acks_carry_only_operation_version_namespace_and_id(protocol: ClientProtocol) -> None:
    a = host(NAME, APP, "T")
    lock_ack = protocol.receive(lock(1))
    assert lock_ack == ack(pb.LOCK, 1)
    assert lock_ack is not None and lock_ack.name == "" and not lock_ack.entities
    assert protocol.phase is Phase.LOCK and not protocol.ready
    assert protocol.receive(update(1, tables(1, T=[a]))) == ack(pb.UPDATE, 1)
    assert protocol.phase is Phase.UPDATE and not protocol.ready
    assert protocol.receive(unlock(1)) == ack(pb.UNLOCK, 1)
    assert protocol.phase is Phase.UNLOCK and protocol.ready
    assert protocol.version == 1


def test_contract_example_two_sidecars(protocol: ClientProtocol) -> None:
    """§2.8 from A's side: round 1 with A, round 2 with A and B, round 3 after B left."""
    a, b = host(NAME, APP, "T"), host("10.0.0.2:50002", "b", "T")
    sent = [
        protocol.receive(order)
        for order in (
            lock(1),
            update(1, tables(1, T=[a])),
            unlock(1),
            lock(2),
            update(2, tables(2, T=[a, b])),
            unlock(2),
            lock(3),
            update(3, tables(3, T=[a])),
            unlock(3),
        )
    ]
    assert sent == [ack(op, v) for v in (1, 2, 3) for op in (pb.LOCK, pb.UPDATE, pb.UNLOCK)]
    assert protocol.tables is not None
    assert protocol.tables.version == 3
    assert set(protocol.tables.types["T"].hosts) == {NAME}


def test_version_falls_back_to_tables_version(protocol: ClientProtocol) -> None:
    """daprd: v = order.version, or tables.version when that is 0 (≤1.16 servers)."""
    a = host(NAME, APP, "T")
    assert protocol.receive(pb.PlacementOrder(operation="lock", tables=tables(7))) == ack(
        pb.LOCK, 7
    )
    assert protocol.receive(pb.PlacementOrder(operation="update", tables=tables(7, T=[a]))) == ack(
        pb.UPDATE, 7
    )
    assert protocol.receive(pb.PlacementOrder(operation="unlock", tables=tables(7))) == ack(
        pb.UNLOCK, 7
    )
    assert protocol.version == 7


def test_unparsable_tables_version_counts_as_zero(protocol: ClientProtocol) -> None:
    order = pb.PlacementOrder(operation="lock", tables=pb.PlacementTables(version="x"))
    assert protocol.receive(order) == ack(pb.LOCK, 0)


def test_update_older_than_current_closes_the_stream(protocol: ClientProtocol) -> None:
    a = host(NAME, APP, "T")
    for order in (lock(5), update(5, tables(5, T=[a])), unlock(5), lock(4)):
        protocol.receive(order)
    with pytest.raises(ProtocolError, match="version mismatch"):
        protocol.receive(update(4, tables(4, T=[a])))


def test_update_of_the_same_version_is_accepted(protocol: ClientProtocol) -> None:
    a = host(NAME, APP, "T")
    protocol.receive(update(3, tables(3, T=[a])))
    assert protocol.receive(update(3, tables(3, T=[a]))) == ack(pb.UPDATE, 3)


@pytest.mark.parametrize("operation", ["", "LOCK", "report", "halt", "unlock "])
def test_unknown_operation_closes_the_stream(protocol: ClientProtocol, operation: str) -> None:
    with pytest.raises(ProtocolError, match="unknown operation"):
        protocol.receive(pb.PlacementOrder(operation=operation, version=1))


def test_unlock_without_update_is_ignored(protocol: ClientProtocol) -> None:
    protocol.receive(lock(1))
    assert protocol.receive(unlock(1)) is None
    assert not protocol.ready and protocol.phase is Phase.LOCK


def test_unlock_of_an_older_version_is_ignored(protocol: ClientProtocol) -> None:
    a = host(NAME, APP, "T")
    protocol.receive(lock(2))
    protocol.receive(update(2, tables(2, T=[a])))
    assert protocol.receive(unlock(1)) is None
    assert not protocol.ready
    assert protocol.receive(unlock(2)) == ack(pb.UNLOCK, 2)


def test_preempted_round(protocol: ClientProtocol) -> None:
    """LOCK n, UPDATE n, LOCK n+1, UPDATE n+1, UNLOCK n+1: the round n never unlocks."""
    a, b = host(NAME, APP, "T"), host("10.0.0.2:50002", "b", "T")
    sent = [
        protocol.receive(order)
        for order in (
            lock(1),
            update(1, tables(1, T=[a])),
            lock(2),
            update(2, tables(2, T=[a, b])),
            unlock(2),
        )
    ]
    assert sent == [
        ack(pb.LOCK, 1),
        ack(pb.UPDATE, 1),
        ack(pb.LOCK, 2),
        ack(pb.UPDATE, 2),
        ack(pb.UNLOCK, 2),
    ]
    assert protocol.ready and protocol.version == 2


def test_lock_after_lock_without_update(protocol: ClientProtocol) -> None:
    a = host(NAME, APP, "T")
    assert protocol.receive(lock(1)) == ack(pb.LOCK, 1)
    assert protocol.receive(lock(2)) == ack(pb.LOCK, 2)
    assert protocol.receive(update(2, tables(2, T=[a]))) == ack(pb.UPDATE, 2)
    assert protocol.receive(unlock(2)) == ack(pb.UNLOCK, 2)


def test_one_shot_push_at_version_zero(protocol: ClientProtocol) -> None:
    """An actor-less client joining a namespace with no actor hosts gets an empty table v0."""
    sent = [
        protocol.receive(o)
        for o in (
            lock(0),
            update(0, pb.PlacementTables(version="0", replication_factor=100)),
            unlock(0),
        )
    ]
    assert sent == [ack(pb.LOCK, 0), ack(pb.UPDATE, 0), ack(pb.UNLOCK, 0)]
    assert protocol.ready
    assert protocol.tables is not None
    with pytest.raises(ActorTypeNotFoundError, match="did not find address for actor T"):
        protocol.tables.locate("T", "x")


def test_a_new_stream_reuses_rings_of_the_previous_table(protocol: ClientProtocol) -> None:
    a = host(NAME, APP, "T")
    protocol.receive(update(1, tables(1, T=[a])))
    old = protocol.tables
    assert old is not None
    fresh = ClientProtocol(
        app_id=APP, namespace=NS, host_name=NAME, ring_impl=protocol.ring_impl, tables=old
    )
    assert fresh.version == 0 and not fresh.ready  # a fresh state machine, as daprd
    fresh.receive(update(1, tables(1, T=[a])))
    assert fresh.tables is not None
    assert fresh.tables.types["T"].ring is old.types["T"].ring
