"""Healthz targets and the HTTP server that reports them, as Dapr's ``pkg/healthz`` does.

``GET /healthz`` answers 200 only when at least one target is registered and every target is
ready; otherwise 503 with an empty body. Components register their own targets (for example
``placement-grpc-server``) and mark them ready as they come up, and may serve more paths on the
same port (placement's ``/placement/state``). The port is served by :mod:`daprplane.core.httpserver`
(see there why not aiohttp).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daprplane.core import httpserver


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
    _app: httpserver.Application = field(
        default_factory=httpserver.Application, init=False, repr=False
    )

    def __post_init__(self) -> None:
        self._app.add_route("GET", "/healthz", self._healthz)

    def add_target(self, name: str) -> Target:
        if name in self.targets:
            raise ValueError(f"healthz target {name!r} is already registered")
        target = self.targets[name] = Target(name)
        return target

    def healthy(self) -> bool:
        return bool(self.targets) and all(t.is_ready for t in self.targets.values())

    def not_ready_targets(self) -> list[str]:
        return sorted(name for name, t in self.targets.items() if not t.is_ready)

    def add_route(self, method: str, path: str, handler: httpserver.Handler) -> None:
        """Serve another path on the healthz port, from now on (also once the port is served).

        ``handler`` gets a :class:`daprplane.core.httpserver.Request` and returns a
        :class:`daprplane.core.httpserver.Response`; an aiohttp ``web.Response`` works too.
        """
        self._app.add_route(method, path, handler)

    def application(self) -> httpserver.Application:
        return self._app

    async def _healthz(self, _: httpserver.Request) -> httpserver.Response:
        return httpserver.Response(status=200 if self.healthy() else 503)
