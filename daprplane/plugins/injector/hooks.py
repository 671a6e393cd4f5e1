"""Calling the injector's plugin hooks, each plugin's failure on its own and with its name.

Every hook is called through pluggy (:func:`daprplane.core.hookcall.call_each`), so plugins
run in pluggy's order (most recently registered first, ``tryfirst`` ones before, ``trylast``
ones after) and wrappers wrap the whole call. Each plugin works on its own copy of the data;
what it returns or leaves is checked, and one that raises or breaks the rules is handled by the
failure policy:

- ``skip`` (default): log a warning, report the plugin to ``on_failure`` (a metric), and go on
  as if that plugin had not run for this pod;
- ``deny``: the same report, then :class:`PatchError` naming the plugin, which rejects the pod.

Wrappers see the shared data the plugins' accepted edits are copied into; what they leave is
checked once after the call, and a result they broke counts against every wrapper of the hook.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pluggy

from daprplane.core.hookcall import Invoke, call_each
from daprplane.plugins.injector.config import PluginFailurePolicy
from daprplane.plugins.injector.errors import PatchError

log = logging.getLogger("dapr.injector")

POD_OPS = frozenset({"add", "replace", "remove"})
PATCH_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


class PluginResultError(Exception):
    """A plugin returned or left something the injector cannot use."""


def declared_annotations(hook: pluggy.HookRelay | None) -> list[str]:
    """What ``daprplane_injector_annotations`` returns across plugins, for the start-up log."""
    caller = getattr(hook, "daprplane_injector_annotations", None)
    if caller is None:
        return []

    def failed(impl: pluggy.HookImpl, error: Exception) -> None:
        log.warning(
            "injector plugin %s: daprplane_injector_annotations failed: %s",
            impl.plugin_name,
            _describe(error),
        )

    def names(impl: pluggy.HookImpl, arguments: dict[str, Any], invoke: Invoke) -> list[str]:
        return [name for name in invoke(arguments) or [] if isinstance(name, str)]

    found: list[str] = []
    for result in call_each(caller, {}, failed, names) or []:
        found += [name for name in result if isinstance(name, str) and name not in found]
    return found


class InjectorHooks:
    """The three per-pod hooks, with validation and the failure policy."""

    def __init__(
        self,
        hook: pluggy.HookRelay | None,
        *,
        policy: PluginFailurePolicy = PluginFailurePolicy.SKIP,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.hook = hook
        self.policy = policy
        self.on_failure = on_failure

    def edit_sidecar(
        self, sidecar: dict[str, Any], pod: Mapping[str, Any], annotations: Mapping[str, str]
    ) -> dict[str, Any]:
        """The daprd container after every plugin's edits."""
        working = copy.deepcopy(sidecar)

        def edit(impl: pluggy.HookImpl, arguments: dict[str, Any], invoke: Invoke) -> None:
            candidate = copy.deepcopy(working)
            mine = {
                "sidecar": candidate,
                "pod": copy.deepcopy(pod),
                "annotations": dict(annotations),
            }
            accepted = _check_sidecar(invoke(mine), edited=candidate)
            working.clear()
            working.update(accepted)

        # Wrappers get the shared container that each plugin's accepted edits are copied into.
        arguments = {
            "sidecar": working,
            "pod": copy.deepcopy(pod),
            "annotations": dict(annotations),
        }
        if self._call("daprplane_injector_edit_sidecar", arguments, edit) is None:
            return sidecar
        try:
            return _check_sidecar(None, edited=working)
        except PluginResultError as error:
            self._wrappers_failed("daprplane_injector_edit_sidecar", error)
            return sidecar

    def edit_pod(
        self, pod: Mapping[str, Any], annotations: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """The pod-level operations all plugins contribute, in the order they were called."""

        def contribute(
            impl: pluggy.HookImpl, arguments: dict[str, Any], invoke: Invoke
        ) -> list[dict[str, Any]]:
            mine = {"pod": copy.deepcopy(pod), "annotations": dict(annotations)}
            return _check_pod_ops(invoke(mine))

        arguments = {"pod": copy.deepcopy(pod), "annotations": dict(annotations)}
        results = self._call("daprplane_injector_edit_pod", arguments, contribute)
        if results is None:
            return []
        try:
            return _check_pod_ops([op for result in results for op in result])
        except (PluginResultError, TypeError) as error:
            self._wrappers_failed("daprplane_injector_edit_pod", error)
            return []

    def edit_patch(
        self, patch: list[dict[str, Any]], pod: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The final patch after every plugin has seen (and perhaps extended) it."""
        working = copy.deepcopy(patch)

        def edit(impl: pluggy.HookImpl, arguments: dict[str, Any], invoke: Invoke) -> None:
            candidate = copy.deepcopy(working)
            mine = {"patch": candidate, "pod": copy.deepcopy(pod)}
            working[:] = _check_patch(invoke(mine), edited=candidate)

        arguments = {"patch": working, "pod": copy.deepcopy(pod)}
        if self._call("daprplane_injector_edit_patch", arguments, edit) is None:
            return patch
        try:
            return _check_patch(None, edited=working)
        except PluginResultError as error:
            self._wrappers_failed("daprplane_injector_edit_patch", error)
            return patch

    def _call(
        self,
        name: str,
        arguments: dict[str, Any],
        run: Callable[[pluggy.HookImpl, dict[str, Any], Invoke], Any],
    ) -> Any:
        """The hook's results through pluggy; ``None`` when no plugin implements it."""
        caller = getattr(self.hook, name, None)
        if caller is None or not caller.get_hookimpls():
            return None
        return call_each(caller, arguments, functools.partial(self._failed, name), run)

    def _failed(self, hook_name: str, impl: pluggy.HookImpl, error: Exception) -> None:
        self._report(impl.plugin_name, hook_name, error)

    def _wrappers_failed(self, hook_name: str, error: Exception) -> None:
        caller = getattr(self.hook, hook_name)
        wrappers = [impl.plugin_name for impl in caller.get_hookimpls() if _is_wrapper(impl)]
        self._report(", ".join(wrappers) or "unknown", hook_name, error)

    def _report(self, name: str, hook_name: str, error: Exception) -> None:
        reason = str(error) if isinstance(error, PluginResultError) else _describe(error)
        log.warning("injector plugin %s failed in %s: %s", name, hook_name, reason)
        if self.on_failure is not None:
            try:
                self.on_failure(name)
            except Exception:
                log.exception("plugin failure callback raised")
        if self.policy is PluginFailurePolicy.DENY:
            raise PatchError(f"injector plugin '{name}' failed in {hook_name}: {reason}") from error


def _is_wrapper(impl: pluggy.HookImpl) -> bool:
    return bool(impl.wrapper or impl.hookwrapper)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _check_json(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise PluginResultError(f"{what} is not JSON: {error}") from None


def _check_sidecar(returned: Any, edited: dict[str, Any]) -> dict[str, Any]:
    # Plugins edit in place; returning a container instead is accepted too.
    sidecar = edited if returned is None else returned
    if not isinstance(sidecar, dict):
        raise PluginResultError(f"the sidecar must be a JSON object, got {type(sidecar).__name__}")
    if sidecar.get("name") != "daprd":
        raise PluginResultError(f"the sidecar must stay named 'daprd', got {sidecar.get('name')!r}")
    _check_json(sidecar, "the sidecar")
    return sidecar


def _check_pod_ops(returned: Any) -> list[dict[str, Any]]:
    if returned is None:
        return []
    if isinstance(returned, str | bytes | Mapping) or not hasattr(returned, "__iter__"):
        raise PluginResultError("pod operations must be a list of JSON-patch operations")
    ops = []
    for op in returned:
        if not isinstance(op, Mapping):
            raise PluginResultError(f"a pod operation must be an object, got {type(op).__name__}")
        kind, path = op.get("op"), op.get("path")
        if kind not in POD_OPS:
            raise PluginResultError(f"pod operation {kind!r} is not add, replace or remove")
        if not isinstance(path, str) or not path.startswith(("/spec/", "/metadata/")):
            raise PluginResultError(f"pod operation path {path!r} is not under /spec or /metadata")
        if kind != "remove" and "value" not in op:
            raise PluginResultError(f"pod operation {kind} {path} has no value")
        clean = {"op": kind, "path": path}
        if kind != "remove":
            clean["value"] = op["value"]
        _check_json(clean, f"pod operation {kind} {path}")
        ops.append(clean)
    return ops


def _check_patch(returned: Any, edited: list[dict[str, Any]]) -> list[dict[str, Any]]:
    patch = edited if returned is None else returned
    if not isinstance(patch, list):
        raise PluginResultError("the patch must stay a list of operations")
    for op in patch:
        if not isinstance(op, dict) or op.get("op") not in PATCH_OPS:
            raise PluginResultError(f"invalid patch operation {op!r}")
        if not isinstance(op.get("path"), str) or not op["path"].startswith("/"):
            raise PluginResultError(f"invalid patch operation path in {op!r}")
        if op["op"] in ("add", "replace", "test") and "value" not in op:
            raise PluginResultError(f"patch operation {op['op']} {op['path']} has no value")
        if op["op"] in ("move", "copy") and not isinstance(op.get("from"), str):
            raise PluginResultError(f"patch operation {op['op']} {op['path']} has no 'from'")
    _check_json(patch, "the patch")
    return patch
