from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from daprplane.core.security.anchors import (
    StaticTrustAnchors,
    TrustAnchorsError,
    TrustAnchorsFile,
    TrustBundle,
)
from tests.pki import SentryCA, pem_of

POLL = 0.05


async def _eventually(predicate, timeout: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(POLL)


def test_bundle_parsing() -> None:
    a, b = SentryCA(), SentryCA()
    bundle = TrustBundle.from_pem(pem_of(a.root, b.root))
    assert bundle.certificates == (a.root, b.root)
    assert TrustBundle.from_pem(bundle.pem) == bundle
    for bad in (b"", b"not pem"):
        with pytest.raises(TrustAnchorsError):
            TrustBundle.from_pem(bad)


def test_static_anchors_notify_only_on_change() -> None:
    a, b = SentryCA(), SentryCA()
    anchors = StaticTrustAnchors.from_pem(a.anchors_pem)
    seen: list[TrustBundle] = []
    unsubscribe = anchors.subscribe(seen.append)
    anchors.update(a.bundle)
    anchors.update(b.bundle)
    assert seen == [b.bundle] and anchors.current == b.bundle
    unsubscribe()
    anchors.update(a.bundle)
    assert seen == [b.bundle]


async def test_file_is_awaited_then_watched(tmp_path: Path) -> None:
    a, b = SentryCA(), SentryCA()
    path = tmp_path / "ca.crt"
    source = TrustAnchorsFile(path, poll_interval=POLL)
    starting = asyncio.create_task(source.start())
    await asyncio.sleep(0.2)
    assert not starting.done()  # waits for the file to appear
    path.write_bytes(b"")
    await asyncio.sleep(0.2)
    assert not starting.done()  # an empty file is still "not there yet"
    path.write_bytes(a.anchors_pem)
    await asyncio.wait_for(starting, 2)
    assert source.current == a.bundle

    seen: list[TrustBundle] = []
    source.subscribe(seen.append)
    # Same content rewritten: no notification.
    path.write_bytes(a.anchors_pem)
    await asyncio.sleep(0.2)
    assert seen == []
    # Unparsable rewrite: ignored, previous bundle stays.
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    await asyncio.sleep(0.2)
    assert source.current == a.bundle and seen == []
    # Atomic replacement as the kubelet does it (rename over the old file).
    staged = tmp_path / "staged"
    staged.write_bytes(pem_of(a.root, b.root))
    os.replace(staged, path)
    await _eventually(lambda: len(seen) == 1)
    assert source.current.certificates == (a.root, b.root)
    await source.aclose()


async def test_invalid_file_at_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ca.crt"
    path.write_bytes(b"this is not a certificate")
    with pytest.raises(TrustAnchorsError, match=str(path)):
        await TrustAnchorsFile(path, poll_interval=POLL).start()


def test_current_before_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        _ = TrustAnchorsFile(tmp_path / "x").current
