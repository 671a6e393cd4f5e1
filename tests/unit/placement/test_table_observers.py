"""The ``daprplane_placement_table_disseminated`` hook: each observer on its own."""

from __future__ import annotations

import logging

import pluggy
import pytest

from daprplane.core import hookspecs
from daprplane.core.markers import hookimpl
from daprplane.plugins.placement.service import TableObservers
from daprplane.plugins.placement.tables import build_tables
from tests.unit.placement.machine import host


def test_a_failing_observer_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[str, int, dict[str, list[str]]]] = []

    class Broken:
        @hookimpl
        def daprplane_placement_table_disseminated(self, namespace: str) -> None:
            raise RuntimeError("observer bug")

    class Recorder:
        @hookimpl
        def daprplane_placement_table_disseminated(self, namespace, version, tables):  # type: ignore[no-untyped-def]
            seen.append((namespace, version, {t: sorted(h) for t, h in tables.items()}))

    manager = pluggy.PluginManager("daprplane")
    manager.add_hookspecs(hookspecs)
    manager.register(Recorder(), name="recorder")
    manager.register(Broken(), name="broken")
    observers = TableObservers(manager.hook, logging.getLogger("test"))
    with caplog.at_level(logging.ERROR):
        observers("default", 3, build_tables([host("a", ["T", "U"]), host("b")], 3, 100))
    assert seen == [("default", 3, {"T": ["a", "b"], "U": ["a"]})]
    assert "Table observer of plugin broken failed: observer bug" in caplog.text
