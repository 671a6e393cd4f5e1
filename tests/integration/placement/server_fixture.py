"""A placement server in the test's own event loop (fast) or as a real launcher subprocess."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

import grpc

from daprplane.plugins.placement.disseminator import Disseminator, Settings
from daprplane.plugins.placement.leadership import SingleNode
from daprplane.plugins.placement.namespaces import Namespaces
from daprplane.plugins.placement.server import PlacementServicer, new_server
from tests.integration.launchers import LoopbackPorts, free_port, started_healthy


@dataclass
class InProcessPlacement:
    address: str
    namespaces: Namespaces
    servicer: PlacementServicer
    completed: list[tuple[str, int]]


@contextlib.asynccontextmanager
async def in_process(
    timeout: timedelta = timedelta(seconds=8),
    coalesce_window: timedelta = timedelta(0),
    *,
    leader: bool = True,
) -> AsyncIterator[InProcessPlacement]:
    settings = Settings(timeout=timeout, coalesce_window=coalesce_window)
    completed: list[tuple[str, int]] = []

    def machine(namespace, loop):  # type: ignore[no-untyped-def]
        return Disseminator(
            namespace,
            loop,
            settings,
            on_round_completed=lambda ns, v, _t: completed.append((ns, v)),
        )

    namespaces = Namespaces(machine)
    leadership = SingleNode()
    if leader:
        await leadership.start()
    servicer = PlacementServicer(namespaces, leadership, node_id="dapr-placement-0", mtls=False)
    server = new_server(2, 3)
    server.add_generic_rpc_handlers((servicer.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield InProcessPlacement(f"127.0.0.1:{port}", namespaces, servicer, completed)
    finally:
        servicer.shut_down()
        await server.stop(1)
        await namespaces.aclose()


@dataclass
class PlacementProcess:
    process: subprocess.Popen[str]
    port: int
    healthz_port: int
    metrics_port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def get(self, path: str, port: int | None = None) -> tuple[int, str, str]:
        url = f"http://127.0.0.1:{port or self.healthz_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return (
                    response.status,
                    response.headers.get("Content-Type", ""),
                    response.read().decode(),
                )
        except urllib.error.HTTPError as error:
            return error.code, "", ""

    def metrics(self) -> str:
        return self.get("/metrics", self.metrics_port)[2]

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        return self.process.returncode, out


@contextlib.contextmanager
def run_placement(*args: str, env: dict[str, str] | None = None) -> Iterator[PlacementProcess]:
    """``daprplane-placement`` on free loopback ports with an empty environment, once healthy.

    Without an ``--initial-cluster`` in ``args`` the node's raft port is a free one too: the
    default, 8201, would collide between tests running side by side."""
    if not any(arg.startswith("--initial-cluster") for arg in args):
        node = next((a.split("=", 1)[1] for a in args if a.startswith("--id=")), "dapr-placement-0")
        args = (f"--initial-cluster={node}=127.0.0.1:{free_port()}", *args)
    ports = LoopbackPorts()
    with started_healthy(
        "daprplane-placement", *ports.flags(), *args, healthz_port=ports.healthz, env=env
    ) as process:
        yield PlacementProcess(process, ports.port, ports.healthz, ports.metrics)


def channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address)
