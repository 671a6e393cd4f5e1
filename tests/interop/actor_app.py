"""A tiny actor host speaking Dapr's app-side actor HTTP protocol, for interop tests.

Real ``daprd`` sidecars sit in front of one process each. daprd reads ``GET /dapr/config`` to learn
which actor types the app hosts (and reports them to placement), probes ``GET /healthz``, invokes
methods with ``PUT /actors/<type>/<id>/method/<method>`` and deactivates with
``DELETE /actors/<type>/<id>``. An actor is activated on its first call; its state is an
in-memory counter, so an actor that moves to another app starts counting afresh there.

Methods:

- ``increment``: add one to the actor's counter, answer ``{"count": n}``;
- ``whoami``: answer which app and process hosts the actor, with its counter.

``GET /introspect`` (not part of Dapr's protocol) lets a test see the active actors and every
activation and deactivation this app has seen. Every protocol call is logged on stdout.

Run as a script, so it needs nothing but aiohttp::

    python actor_app.py --name app-a --port 5001 --actor-type Counter
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# Short drain timeouts keep a rebalance quick when a sidecar leaves; the idle timeout is long so
# that no actor is deactivated for idleness while a test runs.
ACTOR_SETTINGS: dict[str, Any] = {
    "actorIdleTimeout": "1h",
    "actorScanInterval": "30s",
    "drainOngoingCallTimeout": "5s",
    "drainRebalancedActors": True,
}


@dataclass
class ActorHost:
    name: str
    actor_types: tuple[str, ...]
    counters: dict[tuple[str, str], int] = field(default_factory=dict)
    activations: list[list[str]] = field(default_factory=list)
    deactivations: list[list[str]] = field(default_factory=list)
    calls: int = 0

    def log(self, message: str, **fields: Any) -> None:
        line = {"time": round(time.time(), 3), "app": self.name, "msg": message, **fields}
        print(json.dumps(line), flush=True)

    def config(self) -> dict[str, Any]:
        return {"entities": list(self.actor_types), **ACTOR_SETTINGS}

    def activate(self, actor_type: str, actor_id: str) -> None:
        if (actor_type, actor_id) not in self.counters:
            self.counters[(actor_type, actor_id)] = 0
            self.activations.append([actor_type, actor_id])
            self.log("activated", type=actor_type, id=actor_id)

    def invoke(self, actor_type: str, actor_id: str, method: str) -> dict[str, Any] | None:
        """The method's answer, or None for a method actors of this app do not have."""
        self.activate(actor_type, actor_id)
        self.calls += 1
        key = (actor_type, actor_id)
        if method == "increment":
            self.counters[key] += 1
            return {"count": self.counters[key]}
        if method == "whoami":
            return {
                "app": self.name,
                "pid": os.getpid(),
                "type": actor_type,
                "id": actor_id,
                "count": self.counters[key],
            }
        return None

    def deactivate(self, actor_type: str, actor_id: str) -> bool:
        if self.counters.pop((actor_type, actor_id), None) is None:
            return False
        self.deactivations.append([actor_type, actor_id])
        self.log("deactivated", type=actor_type, id=actor_id)
        return True

    def introspect(self) -> dict[str, Any]:
        return {
            "app": self.name,
            "pid": os.getpid(),
            "active": sorted([t, i] for t, i in self.counters),
            "activations": self.activations,
            "deactivations": self.deactivations,
            "calls": self.calls,
        }


def build_app(host: ActorHost) -> web.Application:
    async def dapr_config(_: web.Request) -> web.Response:
        host.log("config requested")
        return web.json_response(host.config())

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(status=200)

    async def invoke(request: web.Request) -> web.Response:
        actor_type = request.match_info["type"]
        actor_id = request.match_info["id"]
        method = request.match_info["method"]
        await request.read()  # the call's body, unused by these methods
        if actor_type not in host.actor_types:
            host.log("unknown actor type", type=actor_type, id=actor_id, method=method)
            return web.json_response({"error": f"no actor type {actor_type}"}, status=404)
        answer = host.invoke(actor_type, actor_id, method)
        if answer is None:
            return web.json_response({"error": f"no method {method}"}, status=404)
        return web.json_response(answer)

    async def deactivate(request: web.Request) -> web.Response:
        actor_type = request.match_info["type"]
        actor_id = request.match_info["id"]
        if not host.deactivate(actor_type, actor_id):
            host.log("deactivation of an inactive actor", type=actor_type, id=actor_id)
        return web.Response(status=200)

    async def introspect(_: web.Request) -> web.Response:
        return web.json_response(host.introspect())

    async def anything_else(request: web.Request) -> web.Response:
        # Logged so that a call daprd makes and this app does not know shows in the test report.
        host.log("unhandled request", method=request.method, path=request.path)
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/dapr/config", dapr_config)
    app.router.add_get("/healthz", healthz)
    app.router.add_put("/actors/{type}/{id}/method/{method}", invoke)
    app.router.add_delete("/actors/{type}/{id}", deactivate)
    app.router.add_get("/introspect", introspect)
    app.router.add_route("*", "/{tail:.*}", anything_else)
    return app


async def serve(host: ActorHost, address: str, port: int) -> None:
    runner = web.AppRunner(build_app(host), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, address, port)
    await site.start()
    host.log("listening", address=address, port=port, pid=os.getpid())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    host.log("stopping")
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="app name reported by whoami")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--actor-type", action="append", dest="actor_types", required=True)
    args = parser.parse_args(argv)
    host = ActorHost(args.name, tuple(args.actor_types))
    asyncio.run(serve(host, args.address, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
