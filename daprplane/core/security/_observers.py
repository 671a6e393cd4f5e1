"""Synchronous change notification shared by trust anchors and SVID sources."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Observers(Generic[T]):
    """Callbacks run in order on every change; one that raises is logged and the rest still run."""

    def __init__(self, logger: logging.Logger) -> None:
        self._callbacks: list[Callable[[T], None]] = []
        self._logger = logger

    def subscribe(self, callback: Callable[[T], None]) -> Callable[[], None]:
        """Register ``callback``; the returned function unregisters it."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def notify(self, value: T) -> None:
        for callback in list(self._callbacks):
            try:
                callback(value)
            except Exception:
                self._logger.exception("Change subscriber %r failed", callback)
