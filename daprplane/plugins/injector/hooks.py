"""Calling the injector's plugin hooks one plugin at a time, so each failure has a name.

pluggy would call every implementation in one go, most recently registered first, and one
exception would lose the others' work. Here each plugin runs on its own copy of the data, in
registration order (``tryfirst`` ones first, ``trylast`` ones last); its result is checked, and
a plugin that raises or returns something invalid is handled by the failure policy:

- ``skip`` (default): log a warning, report the plugin to ``on_failure`` (a metric), and go on
  as if that plugin had not run for this pod;
- ``deny``: the same report, then :class:`PatchError` naming the plugin, which rejects the pod.

Hook wrappers are not supported for injector hooks and are ignored.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pluggy

from daprplane.plugins.injector.config import PluginFailurePolicy
from daprplane.plugins.injector.errors import PatchError

log = logging.getLogger("dapr.injector")

POD_OPS = frozenset({"add", "replace", "remove"})
PATCH_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


class PluginResultError(Exception):
    """A plugin returned or left something the injector cannot use."""


def ordered_implementations(caller: Any) -> list[pluggy.HookImpl]:
    """The implementations of one hook in the order the injector calls them."""
    impls = [impl for impl in caller.get_hookimpls() if not (impl.hookwrapper or impl.wrapper)]
    # get_hookimpls() lists plain ones in registration order, appends tryfirst ones and puts
    # trylast ones in front (each newly registered trylast first).
    first = [impl for impl in impls if impl.tryfirst]
    plain = [impl for impl in impls if not impl.tryfirst and not impl.trylast]
    last = list(reversed([impl for impl in impls if impl.trylast]))
    return [*first, *plain, *last]


def declared_annotations(hook: pluggy.HookRelay | None) -> list[str]:
    """What ``daprplane_injector_annotations`` returns across plugins, for the start-up log."""
    if hook is None:
        return []
    found: list[str] = []
    for impl in ordered_implementations(hook.daprplane_injector_annotations):
        try:
            result: Any = impl.function()
            names = [name for name in result or [] if isinstance(name, str)]
        except Exception as error:
            log.warning(
                "injector plugin %s: daprplane_injector_annotations failed: %s",
                impl.plugin_name,
                _describe(error),
            )
            continue
        found += [name for name in names if name not in found]
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
        for impl in self._impls("daprplane_injector_edit_sidecar"):
            candidate = copy.deepcopy(sidecar)
            arguments = {
                "sidecar": candidate,
                "pod": copy.deepcopy(pod),
                "annotations": dict(annotations),
            }
            result = self._call(
                impl, arguments, functools.partial(_check_sidecar, edited=candidate)
            )
            if result is not None:
                sidecar = result
        return sidecar

    def edit_pod(
        self, pod: Mapping[str, Any], annotations: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """The pod-level operations all plugins contribute, in plugin order."""
        ops: list[dict[str, Any]] = []
        for impl in self._impls("daprplane_injector_edit_pod"):
            arguments = {"pod": copy.deepcopy(pod), "annotations": dict(annotations)}
            result = self._call(impl, arguments, _check_pod_ops)
            if result is not None:
                ops += result
        return ops

    def edit_patch(
        self, patch: list[dict[str, Any]], pod: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The final patch after every plugin has seen (and perhaps extended) it."""
        for impl in self._impls("daprplane_injector_edit_patch"):
            candidate = copy.deepcopy(patch)
            arguments = {"patch": candidate, "pod": copy.deepcopy(pod)}
            result = self._call(impl, arguments, functools.partial(_check_patch, edited=candidate))
            if result is not None:
                patch = result
        return patch

    def _impls(self, name: str) -> list[pluggy.HookImpl]:
        if self.hook is None:
            return []
        return ordered_implementations(getattr(self.hook, name))

    def _call(
        self,
        impl: pluggy.HookImpl,
        arguments: Mapping[str, Any],
        check: Callable[[Any], Any],
    ) -> Any:
        try:
            # Pass only the arguments the implementation declares, as pluggy does.
            returned = impl.function(*[arguments[name] for name in impl.argnames])
            return check(returned)
        except Exception as error:
            self._failed(impl, error)
            return None

    def _failed(self, impl: pluggy.HookImpl, error: Exception) -> None:
        name = impl.plugin_name
        hook_name = impl.function.__name__
        reason = str(error) if isinstance(error, PluginResultError) else _describe(error)
        log.warning("injector plugin %s failed in %s: %s", name, hook_name, reason)
        if self.on_failure is not None:
            try:
                self.on_failure(name)
            except Exception:
                log.exception("plugin failure callback raised")
        if self.policy is PluginFailurePolicy.DENY:
            raise PatchError(f"injector plugin '{name}' failed in {hook_name}: {reason}") from error


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
