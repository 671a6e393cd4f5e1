"""The plugin host: finds plugins through entry points and isolates each one's failures.

Every plugin, built-in or third-party, comes from the ``daprplane.plugins`` entry-point group. One
that cannot be imported, does not fit the hook specs or fails to register its components is
recorded with its distribution and the reason, and the others load regardless.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pluggy

from daprplane.core import hookspecs
from daprplane.core.component import ComponentSpec
from daprplane.core.markers import PROJECT

ENTRY_POINT_GROUP = "daprplane.plugins"
ALLOW_ENV = "DAPRPLANE_PLUGINS"
DISABLE_ENV = "DAPRPLANE_DISABLE_PLUGINS"


class Status(Enum):
    LOADED = "loaded"
    FAILED = "failed"
    DISABLED = "disabled"


@dataclass(frozen=True)
class PluginRecord:
    """What happened to one entry point, for ``daprplane plugins`` and error messages."""

    name: str
    distribution: str
    status: Status
    reason: str = ""
    components: tuple[str, ...] = ()


def _names(value: str | None) -> set[str] | None:
    if value is None or not value.strip():
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _distribution(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"


class PluginHost:
    """Loads plugins into a pluggy manager and collects the components they register."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.manager = pluggy.PluginManager(PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.records: list[PluginRecord] = []
        self.components: dict[str, ComponentSpec] = {}
        #: Names in ``DAPRPLANE_PLUGINS`` / ``DAPRPLANE_DISABLE_PLUGINS`` that match no entry
        #: point, by variable; see :meth:`selection_warnings`.
        self.unknown_names: dict[str, list[str]] = {}
        self._entry_point_names: list[str] = []

    @property
    def hook(self) -> pluggy.HookRelay:
        return self.manager.hook

    def load_entry_points(self) -> None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        self.load(entry_points)

    def load(self, entry_points: Iterable[importlib.metadata.EntryPoint]) -> None:
        allowed = _names(self.environ.get(ALLOW_ENV))
        disabled = _names(self.environ.get(DISABLE_ENV)) or set()
        entry_points = sorted(entry_points, key=lambda ep: ep.name)
        present = {entry_point.name for entry_point in entry_points}
        self._entry_point_names = sorted(present)
        for variable, selection in ((ALLOW_ENV, allowed or set()), (DISABLE_ENV, disabled)):
            unknown = sorted(selection - present)
            if unknown:
                self.unknown_names[variable] = unknown
        seen: set[str] = set()
        for entry_point in entry_points:
            if entry_point.name in seen:
                continue  # the same distribution visible twice on sys.path
            seen.add(entry_point.name)
            distribution = _distribution(entry_point)
            if allowed is not None and entry_point.name not in allowed:
                reason = f"not listed in {ALLOW_ENV}"
                self._record(entry_point.name, distribution, Status.DISABLED, reason)
                continue
            if entry_point.name in disabled:
                reason = f"listed in {DISABLE_ENV}"
                self._record(entry_point.name, distribution, Status.DISABLED, reason)
                continue
            try:
                plugin = entry_point.load()
            except Exception as error:  # any import-time failure is the plugin's, not ours
                self._fail(entry_point.name, distribution, f"import failed: {_describe(error)}")
                continue
            self.register(plugin, entry_point.name, distribution)

    def register(self, plugin: Any, name: str, distribution: str = "in-process") -> bool:
        """Register one plugin object and its components; ``False`` (and a record) on failure."""
        try:
            self.manager.register(plugin, name=name)
            self._check_hooks_known(plugin, name)
        except Exception as error:
            self._unregister(name)
            self._fail(name, distribution, f"does not fit the hook specs: {_describe(error)}")
            return False
        try:
            specs = self._components_of(name)
        except Exception as error:
            self._unregister(name)
            self._fail(name, distribution, f"component registration failed: {_describe(error)}")
            return False
        clashes = [spec.name for spec in specs if spec.name in self.components]
        if clashes:
            self._unregister(name)
            reason = f"component name already registered: {', '.join(clashes)}"
            self._fail(name, distribution, reason)
            return False
        for spec in specs:
            self.components[spec.name] = spec
        names = tuple(spec.name for spec in specs)
        self._record(name, distribution, Status.LOADED, components=names)
        return True

    def selection_warnings(self) -> list[str]:
        """One line per variable that names plugins no entry point has: the selection is still
        honoured (naming only unknown plugins in ``DAPRPLANE_PLUGINS`` loads none), but a
        misspelt name should not go unnoticed."""
        known = ", ".join(self._entry_point_names) or "none"
        return [
            f"{variable} names plugins that are not installed: {', '.join(names)} "
            f"(installed plugins: {known})"
            for variable, names in self.unknown_names.items()
        ]

    def failures(self) -> list[PluginRecord]:
        return [record for record in self.records if record.status is Status.FAILED]

    def record_for_component(self, component: str) -> PluginRecord | None:
        """The record of the plugin that registers ``component``, by the built-in naming rule."""
        for record in self.records:
            if component in record.components or record.name == component:
                return record
        return None

    def _components_of(self, name: str) -> list[ComponentSpec]:
        plugin = self.manager.get_plugin(name)
        implementations = [
            impl
            for impl in self.hook.daprplane_register_components.get_hookimpls()
            if impl.plugin is plugin
        ]
        specs: list[ComponentSpec] = []
        for implementation in implementations:
            result: Any = implementation.function()
            if result is None:
                continue
            for spec in result:
                if not isinstance(spec, ComponentSpec):
                    raise TypeError(f"expected ComponentSpec, got {type(spec).__name__}")
                specs.append(spec)
        return specs

    def _check_hooks_known(self, plugin: Any, name: str) -> None:
        # pluggy only reports hooks without a spec on check_pending(), for all plugins at once;
        # checking here keeps a misspelt hook the fault of the plugin that has it.
        for caller in self.manager.get_hookcallers(plugin) or []:
            if caller.spec is None:
                raise TypeError(f"unknown hook {caller.name!r}")

    def _unregister(self, name: str) -> None:
        plugin = self.manager.get_plugin(name)
        if plugin is not None:
            self.manager.unregister(plugin, name=name)

    def _fail(self, name: str, distribution: str, reason: str) -> None:
        self._record(name, distribution, Status.FAILED, reason)

    def _record(
        self,
        name: str,
        distribution: str,
        status: Status,
        reason: str = "",
        components: tuple[str, ...] = (),
    ) -> None:
        self.records.append(PluginRecord(name, distribution, status, reason, components))


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
