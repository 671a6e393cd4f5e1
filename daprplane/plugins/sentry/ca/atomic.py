"""Writing credential files so that a crash never leaves half a file, and cleaning up after one.

Each file is written to a temporary file beside it (``.tmp-<name>-<random>``, mode 0600 from
the start), flushed to disk, then renamed over the target. A set of files (the three X.509
files of a generated CA) is written in two phases: every temporary file is complete on disk
before the first rename, so a crash can only interrupt the quick run of renames. What such a
crash leaves is a partial set plus temporary files; the temporary files may hold key bytes, so
:func:`remove_leftovers` deletes them at start, and the store refuses the partial set with a
message that says how to recover (see :mod:`.completeness`).

The ``.tmp-`` prefix is also what the credential directory watcher skips, so our own writes in
progress never trigger a reload.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Sequence

from daprplane.plugins.sentry.ca.store import CredentialsError

log = logging.getLogger("dapr.sentry.ca")

TEMPORARY_PREFIX = ".tmp-"
#: ``tempfile.mkstemp`` draws 8 characters from this alphabet.
_RANDOM = r"[a-z0-9_]{8}"
#: Temporary files of earlier versions, named ``.tmp-<random>`` without the target's name.
_UNNAMED_TEMPORARY = re.compile(re.escape(TEMPORARY_PREFIX) + _RANDOM)


def _failure(path: str, error: OSError) -> CredentialsError:
    return CredentialsError(f"failed to write {path}: {error.strerror or error}")


def _stage(path: str, data: bytes) -> str:
    """``data`` on disk in a new temporary file beside ``path``; mkstemp creates it 0600."""
    directory = os.path.dirname(path) or "."
    prefix = f"{TEMPORARY_PREFIX}{os.path.basename(path)}-"
    try:
        fd, temporary = tempfile.mkstemp(prefix=prefix, dir=directory)
    except OSError as error:
        raise _failure(path, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise _failure(path, error) from None
    return temporary


def _sync_directories(paths: Iterable[str]) -> None:
    """Make the renames themselves durable; best effort where directories cannot be opened."""
    for directory in sorted({os.path.dirname(path) or "." for path in paths}):
        with contextlib.suppress(OSError):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def write_private_set(files: Sequence[tuple[str, bytes]]) -> None:
    """Write every ``(path, data)`` with mode 0600: all data on disk first, then the renames."""
    staged: list[tuple[str, str]] = []
    try:
        for path, data in files:
            staged.append((_stage(path, data), path))
        while staged:
            temporary, path = staged[0]
            try:
                os.replace(temporary, path)
            except OSError as error:
                raise _failure(path, error) from None
            staged.pop(0)
    finally:
        for temporary, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    _sync_directories(path for path, _ in files)


def write_private(path: str, data: bytes) -> None:
    """Write ``data`` with mode 0600, atomically, so a reader never sees half a file."""
    write_private_set([(path, data)])


def is_leftover(name: str, credential_names: Iterable[str]) -> bool:
    """Whether ``name`` is a temporary file an interrupted write of ours left behind."""
    if not name.startswith(TEMPORARY_PREFIX):
        return False
    if _UNNAMED_TEMPORARY.fullmatch(name):
        return True
    return any(
        re.fullmatch(re.escape(f"{TEMPORARY_PREFIX}{credential}-") + _RANDOM, name)
        for credential in credential_names
    )


def remove_leftovers(paths: Iterable[str]) -> list[str]:
    """Delete the temporary files interrupted writes of ``paths`` left beside them.

    Only regular files named as :func:`write_private_set` names them are touched. Returns the
    removed paths. A directory that cannot be listed is skipped: loading reports it.
    """
    by_directory: dict[str, set[str]] = {}
    for path in paths:
        by_directory.setdefault(os.path.dirname(path) or ".", set()).add(os.path.basename(path))
    removed: list[str] = []
    for directory, names in sorted(by_directory.items()):
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in sorted(entries):
            if not is_leftover(entry, names):
                continue
            leftover = os.path.join(directory, entry)
            try:
                if not stat.S_ISREG(os.lstat(leftover).st_mode):
                    continue
                os.unlink(leftover)
            except FileNotFoundError:
                continue
            except OSError as error:
                raise CredentialsError(
                    f"failed to remove {leftover}, left by an interrupted write: "
                    f"{error.strerror or error}"
                ) from None
            log.warning("Removed %s, left behind by an interrupted write", leftover)
            removed.append(leftover)
    return removed
