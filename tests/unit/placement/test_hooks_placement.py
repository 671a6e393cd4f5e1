"""Placement's table observers through pluggy: order, wrappers and failures."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import pytest

from daprplane.core.host import PluginHost
from daprplane.plugin import PlacementTables, hookimpl
from daprplane.plugins.placement import plugin as placement_plugin
from daprplane.plugins.placement.service import TableObservers
from daprplane.plugins.placement.tables import build_tables
from tests.unit.placement.machine import host as placement_host


def observer(name: str, seen: list[str], **options: Any) -> object:
    class Observer:
        @hookimpl(**options)
        def daprplane_placement_table_disseminated(
            self, version: int, tables: PlacementTables
        ) -> None:
            seen.append(f"{name} v{version} {sorted(tables['T'])}")

    return Observer()


class Wrapper:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    @hookimpl(wrapper=True)
    def daprplane_placement_table_disseminated(self, namespace: str) -> Generator[None, Any, Any]:
        self.seen.append(f"before {namespace}")
        result = yield
        self.seen.append(f"after {namespace}")
        return result


class OldStyle:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    @hookimpl(hookwrapper=True)
    def daprplane_placement_table_disseminated(self) -> Generator[None, Any, None]:
        self.seen.append("old-style before")
        yield
        self.seen.append("old-style after")


class Broken:
    @hookimpl
    def daprplane_placement_table_disseminated(self) -> None:
        raise RuntimeError("observer bug")


def test_observers_run_in_pluggys_order_inside_the_wrappers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    host = PluginHost(environ={})
    assert host.register(placement_plugin, "placement")
    for name, plugin in (
        ("last", observer("last", seen, trylast=True)),
        ("broken", Broken()),
        ("wrapper", Wrapper(seen)),
        ("plain", observer("plain", seen)),
        ("first", observer("first", seen, tryfirst=True)),
        ("old-style", OldStyle(seen)),
    ):
        assert host.register(plugin, name), host.records[-1].reason
    observers = TableObservers(host.hook, logging.getLogger("test"))
    with caplog.at_level(logging.ERROR):
        observers("default", 3, build_tables([placement_host("a", ["T"])], 3, 100))
    assert seen == [
        "old-style before",
        "before default",
        "first v3 ['a']",
        "plain v3 ['a']",
        "last v3 ['a']",
        "after default",
        "old-style after",
    ]
    assert "Table observer of plugin broken failed: observer bug" in caplog.text


def test_no_observer_no_work() -> None:
    host = PluginHost(environ={})
    assert host.register(placement_plugin, "placement")
    TableObservers(host.hook, logging.getLogger("test"))("default", 1, object())  # type: ignore[arg-type]
