"""Healthz targets and the HTTP server that reports them, as Dapr's ``pkg/healthz`` does.

``GET /healthz`` answers 200 only when at least one target is registered and every target is
ready; otherwise 503 with an empty body. Components register their own targets (for example
``placement-grpc-server``) and mark them ready as they come up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Target:
    """One thing that must be ready before the process reports healthy."""

    name: str
    is_ready: bool = False

    def ready(self) -> None:
        self.is_ready = True

    def not_ready(self) -> None:
        self.is_ready = False


@dataclass
class Health:
    """The process's healthz targets, plus extra routes components serve on the same port."""

    targets: dict[str, Target] = field(default_factory=dict)
    routes: list[web.RouteDef] = field(default_factory=list)

    def add_target(self, name: str) -> Target:
        if name in self.targets:
            raise ValueError(f"healthz target {name!r} is already registered")
        target = self.targets[name] = Target(name)
        return target

    def healthy(self) -> bool:
        return bool(self.targets) and all(t.is_ready for t in self.targets.values())

    def not_ready_targets(self) -> list[str]:
        return sorted(name for name, t in self.targets.items() if not t.is_ready)

    def add_route(self, method: str, path: str, handler: Callable[..., object]) -> None:
        """Serve another path on the healthz port (placement's ``/placement/state``)."""
        self.routes.append(web.route(method, path, handler))  # type: ignore[arg-type]

    def application(self) -> web.Application:
        async def healthz(_: web.Request) -> web.Response:
            return web.Response(status=200 if self.healthy() else 503)

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_routes(self.routes)
        return app
