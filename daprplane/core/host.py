"""The plugin host: finds plugins through entry points and isolates each one's failures.

Every plugin, built-in or third-party, comes from the ``daprplane.plugins`` entry-point group. One
that cannot be imported, does not fit the hook specs or fails to register its components is
recorded with its distribution and the reason, and the others load regardless.

The host defines only its own hooks (:mod:`daprplane.core.hookspecs`); each component adds its
specs through ``daprplane_addhooks`` when it registers. Since plugins load in name order, a
hook may be implemented before its spec arrives: it is checked when the spec is added, and
hooks that no loaded component defines are reported once loading is done.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pluggy

from daprplane.core import hookspecs
from daprplane.core.component import ComponentSpec
from daprplane.core.hookcall import Invoke, call_each
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


class _HostPluginManager(pluggy.PluginManager):
    """A plugin manager whose new hook specs never blame the plugin that adds them.

    Plugins load in name order, so one may implement a component's hook before the component
    adds its spec. When the spec arrives, an implementation that does not fit it is the fault
    of its own plugin: that plugin is unloaded and reported, and the spec is added.
    """

    def __init__(self, host: PluginHost) -> None:
        super().__init__(PROJECT)
        self._host = host

    def add_hookspecs(self, module_or_class: Any) -> None:
        for name in dir(module_or_class):
            options = self.parse_hookspec_opts(module_or_class, name)
            caller = getattr(self.hook, name, None)
            if options is None or caller is None or caller.spec is not None:
                continue
            offered = set(_positional_names(getattr(module_or_class, name)))
            for impl in caller.get_hookimpls():
                problem = _misfit(impl, offered, historic=bool(options.get("historic")))
                if problem is not None:
                    self._host.reject(impl.plugin_name, f"does not fit the hook specs: {problem}")
        super().add_hookspecs(module_or_class)


class PluginHost:
    """Loads plugins into a pluggy manager and collects the components they register."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.manager: pluggy.PluginManager = _HostPluginManager(self)
        self.manager.add_hookspecs(hookspecs)
        self.records: list[PluginRecord] = []
        self.components: dict[str, ComponentSpec] = {}
        #: Names in ``DAPRPLANE_PLUGINS`` / ``DAPRPLANE_DISABLE_PLUGINS`` that match no entry
        #: point, by variable; see :meth:`selection_warnings`.
        self.unknown_names: dict[str, list[str]] = {}
        self._entry_point_names: list[str] = []
        self._rejected: dict[str, str] = {}
        # Historic: every plugin gets these once, when it registers, whenever that is.
        self.hook.daprplane_addhooks.call_historic(kwargs={"pluginmanager": self.manager})
        self.hook.daprplane_configure.call_historic(kwargs={"environ": self.environ})

    @property
    def hook(self) -> pluggy.HookRelay:
        return self.manager.hook

    def load_entry_points(self) -> None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        self.load(entry_points)

    def load(self, entry_points: Iterable[importlib.metadata.EntryPoint]) -> None:
        """Load the selected entry points in name order, then check every loaded plugin's hooks
        against the specs the loaded components added (:meth:`check_pending`)."""
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
        self.check_pending()

    def register(self, plugin: Any, name: str, distribution: str = "in-process") -> bool:
        """Register one plugin object and its components; ``False`` (and a record) on failure.

        A hook no spec defines yet is accepted here: the component that defines it may load
        later. :meth:`check_pending` reports the hooks that are still unknown."""
        self._rejected.pop(name, None)
        try:
            self.manager.register(plugin, name=name)
        except pluggy.PluginValidationError as error:
            self._unregister(name)
            self._fail(name, distribution, f"does not fit the hook specs: {_describe(error)}")
            return False
        except Exception as error:  # its daprplane_addhooks or daprplane_configure raised
            self._unregister(name)
            self._fail(name, distribution, f"set-up failed: {_describe(error)}")
            return False
        if name in self._rejected:  # its own specs, added while it registered, do not fit it
            self._fail(name, distribution, self._rejected.pop(name))
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

    def check_pending(self) -> list[PluginRecord]:
        """Unload and report each loaded plugin that implements a hook no spec defines.

        Exempt are hooks marked ``optionalhook=True`` and hooks named after an installed
        plugin that is not loaded (``daprplane_injector_*`` while ``injector`` is disabled):
        such a hook is never called, and the plugin's other hooks still work. Returns the new
        failures."""
        absent = {
            entry_point.replace("-", "_")
            for entry_point in self._entry_point_names
            if self.manager.get_plugin(entry_point) is None
        }
        failed = []
        for record in list(self.records):
            plugin = self.manager.get_plugin(record.name)
            if record.status is not Status.LOADED or plugin is None:
                continue
            unknown = sorted(
                caller.name
                for caller in self.manager.get_hookcallers(plugin) or []
                if caller.spec is None
                and not _optional(caller, plugin)
                and not any(caller.name.startswith(f"daprplane_{name}_") for name in absent)
            )
            if unknown:
                reason = ", ".join(repr(name) for name in unknown)
                failed.append(
                    self.reject(record.name, f"does not fit the hook specs: unknown hook {reason}")
                )
        return [record for record in failed if record is not None]

    def reject(self, name: str, reason: str) -> PluginRecord | None:
        """Unload a registered plugin and turn its record into a failure with ``reason``."""
        self._unregister(name)
        for index, record in enumerate(self.records):
            if record.name == name and record.status is Status.LOADED:
                for component in record.components:
                    self.components.pop(component, None)
                failed = PluginRecord(name, record.distribution, Status.FAILED, reason)
                self.records[index] = failed
                return failed
        self._rejected[name] = reason  # still registering: :meth:`register` records it
        return None

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
        """The components ``name`` registers: the hook is called through pluggy (so wrappers
        wrap it), for that plugin alone; the others registered theirs when they loaded."""
        plugin = self.manager.get_plugin(name)

        def own(impl: pluggy.HookImpl, arguments: dict[str, Any], invoke: Invoke) -> Any:
            if impl.plugin is not plugin:
                return None
            specs = list(invoke(arguments) or ())
            for spec in specs:
                if not isinstance(spec, ComponentSpec):
                    raise TypeError(f"expected ComponentSpec, got {type(spec).__name__}")
            return specs

        def fail(impl: pluggy.HookImpl, error: Exception) -> None:
            raise error

        caller = self.hook.daprplane_register_components
        return [spec for specs in call_each(caller, {}, fail, own) for spec in specs]

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


def _positional_names(function: Any) -> list[str]:
    """The arguments a hook spec offers (pluggy passes hook arguments by these names)."""
    parameters = inspect.signature(function).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [parameter.name for parameter in parameters if parameter.kind in kinds]


def _misfit(impl: pluggy.HookImpl, offered: set[str], *, historic: bool) -> str | None:
    """Why ``impl`` cannot implement a spec offering ``offered``, as pluggy would say it."""
    hook = impl.function.__name__
    if historic and (impl.wrapper or impl.hookwrapper):
        return f"hook {hook!r}: a historic hook cannot have wrappers"
    missing = [name for name in impl.argnames if name not in offered]
    if missing:
        return f"hook {hook!r}: argument {', '.join(map(repr, missing))} not available"
    return None


def _optional(caller: pluggy.HookCaller, plugin: Any) -> bool:
    return any(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
