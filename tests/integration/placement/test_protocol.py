"""The dissemination protocol over real gRPC against an in-process server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc

from daprplane._proto.placement.v1 import placement_pb2
from tests.integration.placement.server_fixture import channel, in_process
from tests.integration.placement.sidecars import Sidecar, until

A, B, C = "10.0.0.1:50002", "10.0.0.2:50002", "10.0.0.3:50002"


async def test_contract_example_a_then_b_then_b_leaves_then_actorless_c() -> None:
    async with in_process() as placement, channel(placement.address) as ch:
        a = await Sidecar(ch, A, "a", entities=["T"]).connect()
        await a.wait_unlocked(1)
        assert a.operations() == [("lock", 1), ("update", 1), ("unlock", 1)]
        tables = a.last_tables()
        assert tables is not None
        assert tables.replication_factor == 100 and tables.version == "1"
        assert a.load_map() == {"T": [A]}
        reported = tables.entries["T"].load_map[A]
        assert (reported.id, reported.namespace, list(reported.entities)) == ("a", "default", ["T"])
        assert reported.api_level == 20 and reported.operation == placement_pb2.REPORT

        b = await Sidecar(ch, B, "b", entities=["T"]).connect()
        await b.wait_unlocked(2)
        await a.wait_unlocked(2)
        assert b.operations() == [("lock", 2), ("update", 2), ("unlock", 2)]
        assert a.load_map() == b.load_map() == {"T": [A, B]}

        await b.close()
        await a.wait_unlocked(3)
        assert a.load_map() == {"T": [A]}

        c = await Sidecar(ch, C, "c").connect()
        await c.wait_unlocked(3)
        assert c.operations() == [("lock", 3), ("update", 3), ("unlock", 3)]
        assert c.load_map() == {"T": [A]}
        await asyncio.sleep(0.2)  # C's acks of the push are swallowed: no new round
        assert a.operations()[-1] == ("unlock", 3)
        await until(lambda: placement.completed == [("default", 1), ("default", 2), ("default", 3)])

        d = await Sidecar(ch, "10.0.0.4:50002", "d", entities=["U"]).connect()
        await d.wait_unlocked(4)
        await c.wait_unlocked(4)  # C takes part in every later round
        assert c.load_map() == {"T": [A], "U": ["10.0.0.4:50002"]}
        for s in (a, c, d):
            await s.aclose()


async def test_join_during_a_round_waits_for_unlock_then_shares_one_version() -> None:
    async with in_process() as placement, channel(placement.address) as ch:
        a = await Sidecar(ch, A, "a", entities=["T"], auto_ack=False).connect()
        await a.wait_order("lock", 1)
        joiners = [
            await Sidecar(ch, f"10.0.1.{i}:50002", f"j{i}", entities=["T"]).connect()
            for i in range(3)
        ]
        await asyncio.sleep(0.3)
        assert all(j.orders == [] for j in joiners)
        for phase in ("lock", "update", "unlock"):
            await a.ack(phase, 1)
        for j in joiners:
            await j.wait_order("lock", 2)
        await a.resume_acks()
        for j in joiners:
            await j.wait_unlocked(2)
        assert len(joiners[0].load_map()["T"]) == 4
        await until(lambda: [v for _, v in placement.completed] == [1, 2])
        for s in (a, *joiners):
            await s.aclose()


async def test_timeout_closes_only_the_laggard_with_deadline_exceeded() -> None:
    async with (
        in_process(timeout=timedelta(seconds=1)) as placement,
        channel(placement.address) as ch,
    ):
        a = await Sidecar(ch, A, "a", entities=["T"]).connect()
        await a.wait_unlocked(1)
        silent = await Sidecar(ch, B, "b", entities=["T"], auto_ack=False).connect()
        ended = await silent.wait_ended(5)
        assert ended.code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert ended.details == "dissemination timeout after 1s for version 2"
        # The survivor gets a fresh round without the laggard.
        await a.wait_unlocked(3)
        assert a.load_map() == {"T": [A]}
        assert a.ended is None
        await a.aclose()
        await silent.aclose()
