"""Standalone CA storage (contract §2.3)."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from daprplane.plugins.sentry.ca import CaSettings, CredentialsError, JwtSettings
from daprplane.plugins.sentry.ca.files import CredentialFiles, FileCredentialStore
from tests.pki import ByoCA

SETTINGS = CaSettings(
    "localhost", "default", timedelta(minutes=15), JwtSettings(False, "", "RS256")
)


def _store(directory: Path) -> FileCredentialStore:
    return FileCredentialStore(
        CredentialFiles.from_flags(
            str(directory), "ca.crt", "issuer.crt", "issuer.key", "jwt.key", "jwks.json"
        )
    )


def test_paths() -> None:
    files = CredentialFiles.from_flags("/c", "/abs/ca.pem", "i.crt", "k", "rel.key", "/x/jwks")
    assert files == CredentialFiles("/abs/ca.pem", "/c/i.crt", "/c/k", "/c/jwt.key", "/x/jwks")
    assert _store(Path("/c")).watched_paths() == ["/c"]


async def test_generates_writes_0600_and_then_never_writes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = await store.load(SETTINGS)
    assert first.generated
    names = ["ca.crt", "issuer.crt", "issuer.key"]
    for name in names:
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    assert (tmp_path / "ca.crt").read_bytes() == first.bundle.trust_anchors_pem
    before = {name: os.stat(tmp_path / name).st_mtime_ns for name in names}
    second = await store.load(SETTINGS)
    assert not second.generated
    assert second.bundle.trust_anchors_pem == first.bundle.trust_anchors_pem
    assert {name: os.stat(tmp_path / name).st_mtime_ns for name in names} == before
    assert sorted(os.listdir(tmp_path)) == names


async def test_byo_files_are_used_as_they_are(tmp_path: Path) -> None:
    byo = ByoCA()
    for name, data in zip(["ca.crt", "issuer.crt", "issuer.key"], byo.files, strict=True):
        (tmp_path / name).write_bytes(b"# operator comment\n" + data)
    loaded = await _store(tmp_path).load(SETTINGS)
    assert not loaded.generated
    assert loaded.bundle.trust_anchors == (byo.root,)
    assert (tmp_path / "ca.crt").read_bytes().startswith(b"# operator comment")


async def test_invalid_files_are_fatal_and_untouched(tmp_path: Path) -> None:
    byo, other = ByoCA(), ByoCA()
    files = [other.files[0], byo.files[1], byo.files[2]]
    for name, data in zip(["ca.crt", "issuer.crt", "issuer.key"], files, strict=True):
        (tmp_path / name).write_bytes(data)
    with pytest.raises(
        CredentialsError, match=r"^failed to verify CA bundle: issuer chain does not belong"
    ):
        await _store(tmp_path).load(SETTINGS)
    assert (tmp_path / "ca.crt").read_bytes() == other.files[0]


async def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="failed to write"):
        await _store(tmp_path / "nope").load(SETTINGS)
