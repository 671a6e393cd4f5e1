"""Notice changes in the credential directories, as Dapr's fswatcher does, by polling.

Polling (every 0.5 s) instead of inotify: it needs no extra dependency, sees changes on every
filesystem (including the symlink swaps of Kubernetes volume updates and network mounts), and
its cost is a few ``stat`` calls. Changes are batched: a reload happens once the directories
have been quiet for a moment, and at most ~2 s after the first change.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence

POLL_INTERVAL = 0.5
QUIET_PERIOD = 0.5
MAX_BATCH = 1.5

Snapshot = dict[str, tuple[int, int, int, int]]


def snapshot(directories: Sequence[str]) -> Snapshot:
    """Identity and content fingerprint of every entry (symlinks followed) in ``directories``."""
    state: Snapshot = {}
    for directory in directories:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.startswith(".tmp-"):
                continue  # our own writes in progress
            path = os.path.join(directory, name)
            try:
                info = os.stat(path)
            except OSError:
                continue
            state[path] = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    return state


class DirectoryWatcher:
    def __init__(self, directories: Sequence[str]) -> None:
        self.directories = list(directories)
        self.last = snapshot(self.directories)

    def rebase(self) -> None:
        """Take the current state as unchanged (after sentry wrote files itself)."""
        self.last = snapshot(self.directories)

    async def _changed(self) -> bool:
        current = await asyncio.to_thread(snapshot, self.directories)
        changed = current != self.last
        self.last = current
        return changed

    async def run(self, on_change: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            if not await self._changed():
                continue
            first = time.monotonic()
            while time.monotonic() - first < MAX_BATCH:
                await asyncio.sleep(QUIET_PERIOD / 2)
                if not await self._changed():
                    break
            await on_change()
