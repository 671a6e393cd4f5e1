"""What a plugin hands the host to add a component, and what the component gets back at run time.

A :class:`ComponentSpec` carries names and flags only: the component's code is named by a
``"module:function"`` path and imported when it is launched, so listing components (every
launcher does, to build its command line) costs no component's imports.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daprplane.core.flags import Flag, FlagValues

if TYPE_CHECKING:
    import asyncio

    import pluggy
    from prometheus_client import CollectorRegistry

    from daprplane.core.health import Health

RunFunction = Callable[["ComponentContext"], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class ComponentSpec:
    """A runnable component (``placement``, ``sentry``, ...) registered by a plugin.

    ``run`` is the async entry point, or its ``"module:function"`` path: a path is imported only
    once the modules in ``requires`` are known to be installed, so that a missing extra is reported
    as such rather than as an ``ImportError`` deep inside the component.
    """

    name: str
    summary: str
    run: RunFunction | str
    flags: Sequence[Flag] = ()
    extra: str | None = None
    requires: Sequence[str] = ()
    #: Logger scope as Dapr names it, e.g. ``dapr.placement``.
    scope: str = ""
    #: Tools that become subcommands (``daprplane placement locate``): click commands, or
    #: ``{"locate": "module:attribute"}`` to import each only when it is run or listed.
    commands: Sequence[Any] | Mapping[str, str] = ()

    def missing_modules(self) -> list[str]:
        return [module for module in self.requires if not _installed(module)]

    def load_run(self) -> RunFunction:
        if not isinstance(self.run, str):
            return self.run
        module_name, _, function = self.run.partition(":")
        run: RunFunction = getattr(importlib.import_module(module_name), function)
        return run


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported; ``find_spec`` of ``a.b`` raises when ``a`` is absent."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _new_event() -> asyncio.Event:
    # asyncio is imported when a component runs, not by every command that lists components.
    import asyncio

    return asyncio.Event()


@dataclass
class ComponentContext:
    """Everything a running component shares with the host."""

    name: str
    flags: FlagValues
    hook: pluggy.HookRelay
    health: Health
    metrics: CollectorRegistry
    logger: logging.Logger
    #: Set when SIGINT/SIGTERM arrive, just before the component's task is cancelled.
    stopping: asyncio.Event = field(default_factory=_new_event)
    extras: dict[str, Any] = field(default_factory=dict)
