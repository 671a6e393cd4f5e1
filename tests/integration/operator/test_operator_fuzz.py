"""Arbitrary bytes to every RPC of the running operator: each call ends with a status (never a
hang), undecodable requests get grpc-go's INTERNAL, and the operator stays healthy."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.launchers import http_status
from tests.integration.operator.conftest import Operator, Sidecar

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

SERVICE = "/dapr.proto.operator.v1.Operator/"
UNARY = [
    "ListComponents",
    "GetConfiguration",
    "ListSubscriptions",
    "ListSubscriptionsV2",
    "GetResiliency",
    "ListResiliency",
    "ListHTTPEndpoints",
    "ListMCPServers",
    "ListWorkflowAccessPolicy",
]
STREAMS = [
    "ComponentUpdate",
    "ConfigurationUpdate",
    "SubscriptionUpdate",
    "ResiliencyUpdate",
    "HTTPEndpointUpdate",
    "MCPServerUpdate",
    "WorkflowAccessPolicyUpdate",
]
EXPECTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,  # a well-formed stream request: it waits for changes
}


class LoopThread:
    """An event loop in a thread holding one sidecar channel, for synchronous hypothesis tests."""

    def __init__(self, sidecar: Sidecar) -> None:
        self.loop = asyncio.new_event_loop()
        self.sidecar = sidecar
        self.ready = threading.Event()
        self.done: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.main = asyncio.run_coroutine_threadsafe(self._hold(), self.loop)
        assert self.ready.wait(60), "no channel to the operator"

    async def _hold(self) -> None:
        self.done = asyncio.Event()
        async with self.sidecar.stub():
            self.ready.set()
            await self.done.wait()

    def call(self, method: str, payload: bytes) -> grpc.StatusCode:
        return asyncio.run_coroutine_threadsafe(self._call(method, payload), self.loop).result(30)

    async def _call(self, method: str, payload: bytes) -> grpc.StatusCode:
        channel = self.sidecar.channel
        try:
            if method in UNARY:
                await channel.unary_unary(SERVICE + method)(payload, timeout=10)
            else:
                stream = channel.unary_stream(SERVICE + method)(payload, timeout=1)
                async for _ in stream:
                    pass
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    def close(self) -> None:
        assert self.done is not None
        self.loop.call_soon_threadsafe(self.done.set)
        self.main.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def caller(operator: Operator) -> Iterator[LoopThread]:
    thread = LoopThread(Sidecar(operator, "fuzzer", "fuzz-namespace"))
    yield thread
    thread.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(method=st.sampled_from(UNARY + STREAMS), payload=st.binary(max_size=64))
def test_arbitrary_requests_get_a_status(
    caller: LoopThread, operator: Operator, method: str, payload: bytes
) -> None:
    code = caller.call(method, payload)
    assert code in EXPECTED, (method, payload, code)


def test_undecodable_is_internal_and_the_operator_stays_healthy(
    caller: LoopThread, operator: Operator
) -> None:
    for method in UNARY + STREAMS:
        # A field-1 string whose length runs past the end: not a protobuf message.
        assert caller.call(method, b"\x0a\x10abc") is grpc.StatusCode.INTERNAL, method
    assert http_status(f"http://127.0.0.1:{operator.healthz_port}/healthz") == 200
    assert operator.process.poll() is None
