"""Acceptance, authorization on every message, isolation and bad input, over real gRPC."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daprplane._proto.placement.v1 import placement_pb2
from tests.integration.placement.server_fixture import channel, in_process
from tests.integration.placement.sidecars import Sidecar, until

METHOD = "/dapr.proto.placement.v1.Placement/ReportDaprStatus"
INVALID, DENIED = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED

BAD_MESSAGES = [
    (
        placement_pb2.Host(id="a", namespace="default", operation=placement_pb2.UNKNOWN, version=1),
        (INVALID, "both operation and version must be set or both must be unset"),
    ),
    (
        placement_pb2.Host(name="n", namespace="default", operation=placement_pb2.REPORT),
        (INVALID, "host ID and namespace must be provided"),
    ),
    (
        placement_pb2.Host(name="n", id="a", operation=placement_pb2.REPORT),
        (INVALID, "host ID and namespace must be provided"),
    ),
    (
        placement_pb2.Host(
            name="n",
            id="a",
            namespace="default",
            entities=["dapr.internal.default.b.workflow"],
            operation=placement_pb2.REPORT,
        ),
        (
            DENIED,
            "entity dapr.internal.default.b.workflow is not allowed for app ID a in namespace "
            "default",
        ),
    ),
]


async def test_non_leader_rejects_before_reading() -> None:
    async with in_process(leader=False) as placement, channel(placement.address) as ch:
        call = ch.stream_stream(METHOD)()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert caught.value.details() == (
            "node id=dapr-placement-0 is not a leader. Only the leader can serve requests"
        )


async def test_shutting_down_is_unavailable_and_closes_streams() -> None:
    async with in_process() as placement, channel(placement.address) as ch:
        a = await Sidecar(ch, "a", entities=["T"]).connect()
        await a.wait_unlocked(1)
        placement.servicer.shut_down()
        ended = await a.wait_ended()
        assert (ended.code, ended.details) == (
            grpc.StatusCode.UNAVAILABLE,
            "placement server is shutting down",
        )
        late = ch.stream_stream(METHOD)()  # refused before reading: no write needed
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await late.read()
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(("message", "expected"), BAD_MESSAGES)
async def test_first_message_authorization(message: placement_pb2.Host, expected: tuple) -> None:  # type: ignore[type-arg]
    async with in_process() as placement, channel(placement.address) as ch:
        s = await Sidecar(ch, "x", "a").connect(message)
        ended = await s.wait_ended()
        assert (ended.code, ended.details) == expected
        assert placement.namespaces.machines() == {}


@pytest.mark.parametrize(("message", "expected"), BAD_MESSAGES)
async def test_later_message_authorization_closes_only_that_stream(
    message: placement_pb2.Host,
    expected: tuple,  # type: ignore[type-arg]
) -> None:
    async with in_process() as placement, channel(placement.address) as ch:
        a = await Sidecar(ch, "10.0.0.1:1", "a", entities=["T"]).connect()
        other = await Sidecar(ch, "10.0.0.2:1", "b", entities=["T"]).connect()
        # Both joined: in one round or two, depending on when the second report arrived.
        await a.wait_for(
            lambda s: (
                s.load_map() == {"T": ["10.0.0.1:1", "10.0.0.2:1"]}
                and s.operations()[-1][0] == "unlock"
            )
        )
        await a.send(message)
        ended = await a.wait_ended()
        assert (ended.code, ended.details) == expected
        # a's leave is a delete round.
        await other.wait_for(
            lambda s: s.load_map() == {"T": ["10.0.0.2:1"]} and s.operations()[-1][0] == "unlock"
        )
        assert other.ended is None
        await other.aclose()


async def test_garbage_bytes_end_that_stream_only() -> None:
    async with in_process() as placement, channel(placement.address) as ch:
        good = await Sidecar(ch, "g", entities=["T"]).connect()
        await good.wait_unlocked(1)
        raw = ch.stream_stream(METHOD)()  # no serializers: bytes go out as they are
        await raw.write(b"\xff\xff\xff\xff garbage")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await raw.read()
        assert caught.value.code() is grpc.StatusCode.INTERNAL
        assert "failed to unmarshal" in (caught.value.details() or "")
        # The same after a valid first message.
        raw = ch.stream_stream(METHOD)()
        await raw.write(
            placement_pb2.Host(
                name="r", id="r", namespace="default", operation=placement_pb2.REPORT
            ).SerializeToString()
        )
        for _ in range(3):
            await raw.read()  # the one-shot push
        await raw.write(b"\x0a\xff\xff")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            while True:
                await raw.read()
        assert caught.value.code() is grpc.StatusCode.INTERNAL
        b = await Sidecar(ch, "b", entities=["T"]).connect()
        await b.wait_unlocked(2)
        await good.wait_unlocked(2)
        for s in (good, b):
            await s.aclose()


async def test_namespace_isolation_and_reset() -> None:
    async with in_process() as placement, channel(placement.address) as ch:
        a = await Sidecar(ch, "a", namespace="ns1", entities=["T"]).connect()
        b = await Sidecar(ch, "b", namespace="ns2", entities=["T"]).connect()
        await a.wait_unlocked(1)
        await b.wait_unlocked(1)
        assert a.load_map() == {"T": ["a"]} and b.load_map() == {"T": ["b"]}
        c = await Sidecar(ch, "c", namespace="ns1", entities=["U"]).connect()
        await c.wait_unlocked(2)
        await asyncio.sleep(0.1)
        assert b.operations() == [("lock", 1), ("update", 1), ("unlock", 1)]
        # A message naming another namespace is not routed there.
        await a.send(
            placement_pb2.Host(
                name="a", id="a", namespace="ns2", entities=["Z"], operation=placement_pb2.REPORT
            )
        )
        await asyncio.sleep(0.2)
        assert b.operations()[-1] == ("unlock", 1)
        await b.close()
        await until(lambda: set(placement.namespaces.machines()) == {"ns1"})
        again = await Sidecar(ch, "b2", namespace="ns2", entities=["T"]).connect()
        await again.wait_unlocked(1)  # versions restart at 1 in a namespace that emptied
        for s in (a, c, again):
            await s.aclose()


async def test_coalesce_window_batches_churn() -> None:
    async with (
        in_process(coalesce_window=timedelta(milliseconds=300)) as placement,
        channel(placement.address) as ch,
    ):
        a = await Sidecar(ch, "a", entities=["T"]).connect()
        await a.wait_unlocked(1)
        joiners = [await Sidecar(ch, f"j{i}", entities=["T"]).connect() for i in range(5)]
        for j in joiners:
            await j.wait_unlocked(2)
        assert len(a.load_map()["T"]) == 6
        for j in joiners[:3]:
            await j.close()
        await a.wait_unlocked(3)
        assert a.load_map() == {"T": ["a", "j3", "j4"]}
        await until(lambda: [v for _, v in placement.completed] == [1, 2, 3])
        for s in (a, *joiners[3:]):
            await s.aclose()


async def test_fifty_concurrent_streams_share_rounds_and_versions_only_grow() -> None:
    async with in_process() as placement, channel(placement.address) as ch:
        sidecars = [
            Sidecar(ch, f"10.1.0.{i}:50002", f"app{i}", entities=["T", f"U{i % 5}"])
            for i in range(50)
        ]
        await asyncio.gather(*(s.connect() for s in sidecars))

        def settled(s: Sidecar) -> bool:
            return len(s.load_map().get("T", [])) == 50 and s.operations()[-1][0] == "unlock"

        for s in sidecars:
            await s.wait_for(settled, timeout=30)
        final = placement.namespaces.machines()["default"].current_version
        assert final <= 50
        for s in sidecars:
            versions = [v for _, v in s.operations()]
            assert versions == sorted(versions)
        await asyncio.gather(*(s.aclose() for s in sidecars))


async def test_vanishing_and_silent_sidecars_mid_round_do_not_stall_others() -> None:
    async with (
        in_process(timeout=timedelta(seconds=1)) as placement,
        channel(placement.address) as ch,
    ):
        a = await Sidecar(ch, "a", entities=["T"]).connect()
        await a.wait_unlocked(1)
        gone = await Sidecar(ch, "gone", entities=["T"], auto_ack=False).connect()
        await gone.wait_order("lock", 2)
        gone.vanish()
        # The vanished stream completes the phase by leaving; then a delete round follows.
        await a.wait_unlocked(3, timeout=5)
        assert a.load_map() == {"T": ["a"]}
        silent = await Sidecar(ch, "silent", auto_ack=False).connect()  # actor-less, never acks
        await silent.wait_order("unlock", 3)
        b = await Sidecar(ch, "b", entities=["T"]).connect()
        ended = await silent.wait_ended(5)
        assert ended.details == "dissemination timeout after 1s for version 4"
        await b.wait_unlocked(5, timeout=5)
        assert b.load_map() == {"T": ["a", "b"]}
        for s in (a, b, gone, silent):
            await s.aclose()


_hosts = st.builds(
    placement_pb2.Host,
    name=st.text(max_size=8),
    port=st.integers(-(2**63), 2**63 - 1),
    entities=st.lists(
        st.sampled_from(["T", "U", "", "dapr.internal.default.a.w", "dapr.internal.x"]), max_size=4
    ),
    id=st.sampled_from(["", "a", "b"]),
    namespace=st.sampled_from(["", "default", "other"]),
    operation=st.sampled_from([0, 1, 2, 3, 4, 7]),
    api_level=st.integers(0, 2**32 - 1),
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    messages=st.lists(st.one_of(_hosts, st.binary(max_size=16)), min_size=1, max_size=6),
    versions=st.lists(st.integers(0, 5), max_size=6),
)
async def test_fuzzed_streams_never_hurt_the_server_or_other_streams(
    messages: list, versions: list
) -> None:  # type: ignore[type-arg]
    async with (
        in_process(timeout=timedelta(seconds=2)) as placement,
        channel(placement.address) as ch,
    ):
        steady = await Sidecar(ch, "steady", "s", entities=["T"]).connect()
        await steady.wait_unlocked(1)
        raw = ch.stream_stream(METHOD)()
        for position, message in enumerate(messages):
            if isinstance(message, placement_pb2.Host):
                if position < len(versions) and message.operation:
                    message.version = versions[position]
                data = message.SerializeToString()
            else:
                data = message
            try:
                await raw.write(data)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                break
        raw.cancel()
        # The server still serves, and the steady stream still takes part in rounds.
        probe = await Sidecar(ch, "probe", "p", entities=["P"]).connect()
        await probe.wait_for(
            lambda s: "P" in s.load_map() and s.operations()[-1][0] == "unlock", timeout=10
        )
        assert steady.ended is None
        await steady.wait_for(lambda s: "P" in s.load_map(), timeout=10)
        await probe.aclose()
        await steady.aclose()
