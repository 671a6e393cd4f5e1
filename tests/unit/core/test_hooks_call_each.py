"""``call_each``: pluggy's own order, wrappers and results, with each plugin's failure its own."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pluggy
import pytest

from daprplane.core.hookcall import call_each
from daprplane.core.markers import PROJECT, hookimpl, hookspec


class Specs:
    @hookspec
    def daprplane_test_event(self, calls: list[str], value: int) -> int:  # type: ignore[empty-body]
        """An event every test plugin below sees."""

    @hookspec(firstresult=True)
    def daprplane_test_first(self, calls: list[str]) -> int:  # type: ignore[empty-body]
        """A firstresult hook."""


def plain(name: str, result: Any = None, **options: Any) -> object:
    class Plain:
        @hookimpl(**options)
        def daprplane_test_event(self, calls: list[str]) -> Any:
            calls.append(name)
            if isinstance(result, Exception):
                raise result
            return result

    return Plain()


class NewStyle:
    @hookimpl(wrapper=True)
    def daprplane_test_event(self, calls: list[str]) -> Generator[None, list[Any], list[Any]]:
        calls.append("new-style before")
        results = yield
        calls.append("new-style after")
        return [*results, "added by wrapper"]


class OldStyle:
    @hookimpl(hookwrapper=True)
    def daprplane_test_event(self, calls: list[str]) -> Generator[None, Any, None]:
        calls.append("old-style before")
        outcome = yield
        calls.append("old-style after")
        outcome.force_result([*outcome.get_result(), "forced by old-style"])


def manager(*plugins: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(Specs)
    for plugin in plugins:
        pm.register(plugin)
    return pm


def no_errors(impl: pluggy.HookImpl, error: Exception) -> None:
    raise AssertionError(f"unexpected failure of {impl.plugin_name}: {error}")


def test_order_results_and_wrappers_are_pluggys() -> None:
    plugins = [
        plain("last", 1, trylast=True),
        plain("a", 2),
        NewStyle(),
        plain("first", 3, tryfirst=True),
        plain("b", 4),
        OldStyle(),
    ]
    direct: list[str] = []
    expected = manager(*plugins).hook.daprplane_test_event(calls=direct, value=0)
    calls: list[str] = []
    caller = manager(*plugins).hook.daprplane_test_event
    assert call_each(caller, {"calls": calls, "value": 0}, no_errors) == expected
    assert calls == direct
    assert calls == [
        "old-style before",
        "new-style before",
        "first",
        "b",
        "a",
        "last",
        "new-style after",
        "old-style after",
    ]
    assert expected == [3, 4, 2, 1, "added by wrapper", "forced by old-style"]


def test_a_failing_plugin_is_reported_and_the_others_still_run() -> None:
    failures: list[tuple[str, str]] = []
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(Specs)
    pm.register(plain("ok", 1), name="ok")
    pm.register(plain("broken", RuntimeError("boom")), name="broken")
    pm.register(NewStyle(), name="wrapper")
    calls: list[str] = []

    def on_error(impl: pluggy.HookImpl, error: Exception) -> None:
        failures.append((impl.plugin_name, str(error)))

    results = call_each(pm.hook.daprplane_test_event, {"calls": calls, "value": 0}, on_error)
    assert failures == [("broken", "boom")]
    assert calls == ["new-style before", "broken", "ok", "new-style after"]
    assert results == [1, "added by wrapper"]
    with pytest.raises(RuntimeError, match="boom"):
        pm.hook.daprplane_test_event(calls=[], value=0)  # pluggy alone stops at the first


class FailsBeforeYield:
    @hookimpl(wrapper=True)
    def daprplane_test_event(self, calls: list[str]) -> Generator[None, Any, Any]:
        raise RuntimeError("setup")
        yield  # pragma: no cover


class FailsAfterYield:
    @hookimpl(wrapper=True)
    def daprplane_test_event(self, calls: list[str]) -> Generator[None, Any, Any]:
        yield
        raise RuntimeError("teardown")


class OldStyleFailsAfterYield:
    @hookimpl(hookwrapper=True)
    def daprplane_test_event(self, calls: list[str]) -> Generator[None, Any, None]:
        yield
        raise RuntimeError("old teardown")


class NeverYields:
    @hookimpl(wrapper=True)
    def daprplane_test_event(self, calls: list[str]) -> Generator[None, Any, Any]:
        if calls is not None:
            return 1
        yield  # pragma: no cover


@pytest.mark.parametrize(
    ("wrapper", "message"),
    [
        (FailsBeforeYield(), "setup"),
        (FailsAfterYield(), "teardown"),
        (OldStyleFailsAfterYield(), "old teardown"),
        (NeverYields(), "the wrapper returned without yielding"),
    ],
)
def test_a_failing_wrapper_is_reported_and_passes_the_call_through(
    wrapper: object, message: str
) -> None:
    failures: list[str] = []
    pm = manager(plain("ok", 7))
    pm.register(wrapper, name="wrapper")

    def on_error(impl: pluggy.HookImpl, error: Exception) -> None:
        failures.append(f"{impl.plugin_name}: {error}")

    calls: list[str] = []
    assert call_each(pm.hook.daprplane_test_event, {"calls": calls, "value": 0}, on_error) == [7]
    assert failures == [f"wrapper: {message}"]
    assert calls == ["ok"]


def test_an_error_policy_that_raises_ends_the_call_through_the_wrappers() -> None:
    seen: list[str] = []

    class Sees:
        @hookimpl(wrapper=True)
        def daprplane_test_event(self) -> Generator[None, Any, Any]:
            try:
                return (yield)
            except LookupError as error:
                seen.append(f"wrapper saw {error}")
                raise

    pm = manager(plain("broken", RuntimeError("boom")), Sees())

    def deny(impl: pluggy.HookImpl, error: Exception) -> None:
        raise LookupError(f"{impl.plugin_name} denied")

    with pytest.raises(LookupError):
        call_each(pm.hook.daprplane_test_event, {"calls": [], "value": 0}, deny)
    assert len(seen) == 1 and seen[0].startswith("wrapper saw")


def test_around_sees_each_plain_call_and_its_failures_are_the_plugins() -> None:
    pm = manager(plain("a", 1), plain("b", 2))
    failures: list[str] = []

    def around(impl: pluggy.HookImpl, arguments: dict[str, Any], invoke: Any) -> Any:
        result = invoke({**arguments, "calls": []})  # the plugin gets its own list
        if result == 2:
            raise ValueError("two is not allowed")
        return result * 10

    calls: list[str] = []
    results = call_each(
        pm.hook.daprplane_test_event,
        {"calls": calls, "value": 0},
        lambda impl, error: failures.append(str(error)),
        around,
    )
    assert results == [10]
    assert failures == ["two is not allowed"]
    assert calls == []


def test_firstresult_and_historic() -> None:
    class One:
        @hookimpl
        def daprplane_test_first(self, calls: list[str]) -> int:
            calls.append("one")
            return 1

    class Broken:
        @hookimpl(tryfirst=True)
        def daprplane_test_first(self, calls: list[str]) -> int:
            raise RuntimeError("no")

    pm = manager(One(), Broken())
    calls: list[str] = []
    assert call_each(pm.hook.daprplane_test_first, {"calls": calls}, lambda *_: None) == 1
    historic = pluggy.PluginManager(PROJECT)

    class HistoricSpecs:
        @hookspec(historic=True)
        def daprplane_test_historic(self) -> None:
            """historic"""

    historic.add_hookspecs(HistoricSpecs)
    with pytest.raises(ValueError, match="historic"):
        call_each(historic.hook.daprplane_test_historic, {}, no_errors)
