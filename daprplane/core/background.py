"""A base for objects that run one background task between ``start()`` and ``aclose()``.

Several long-lived helpers (the trust anchors file watcher, SVID rotation, the placement client)
each own a single asyncio task. They share the same shutdown and ``async with`` behaviour, so it
lives here once: ``aclose`` cancels the task and waits for it to finish, and is safe to call more
than once or before ``start``.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any, Self


class BackgroundTask:
    """Subclasses implement ``start()`` (a no-op when already started) and store their task in
    ``self._task``; ``async with`` calls ``start()`` on entry and ``aclose()`` on exit."""

    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


__all__ = ["BackgroundTask"]


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has finished unwinding."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
