"""The all-or-none rule of the CA files, atomic writes and the removal of their leftovers."""

from __future__ import annotations

import itertools
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daprplane.plugins.sentry.ca import CaSettings, CredentialsError, JwtSettings
from daprplane.plugins.sentry.ca.atomic import (
    is_leftover,
    remove_leftovers,
    write_private,
    write_private_set,
)
from daprplane.plugins.sentry.ca.completeness import RECOVERY, require_all_or_none
from daprplane.plugins.sentry.ca.files import CredentialFiles, FileCredentialStore

NAMES = ("ca.crt", "issuer.crt", "issuer.key")
SETTINGS = CaSettings(
    "localhost", "default", timedelta(minutes=15), JwtSettings(False, "", "RS256")
)


def _store(directory: Path) -> FileCredentialStore:
    return FileCredentialStore(
        CredentialFiles.from_flags(
            str(directory), "ca.crt", "issuer.crt", "issuer.key", "jwt.key", "jwks.json"
        )
    )


def _contents(directory: Path) -> dict[str, bytes]:
    return {entry.name: entry.read_bytes() for entry in directory.iterdir()}


@pytest.mark.parametrize(
    "present", [s for n in range(4) for s in itertools.combinations(NAMES, n)], ids=str
)
def test_all_or_none(present: tuple[str, ...]) -> None:
    parts = {name: (b"data" if name in present else None) for name in NAMES}
    if len(present) == 3:
        assert require_all_or_none(parts) is True
    elif not present:
        assert require_all_or_none(parts) is False
    else:
        missing = [name for name in NAMES if name not in present]
        with pytest.raises(CredentialsError) as caught:
            require_all_or_none(parts, where=" in secret ns/dapr-trust-bundle")
        assert str(caught.value) == (
            f"incomplete CA in secret ns/dapr-trust-bundle: missing {', '.join(missing)} "
            f"(found {', '.join(present)}); {RECOVERY}"
        )


def test_empty_parts_are_invalid() -> None:
    with pytest.raises(CredentialsError) as caught:
        require_all_or_none({"ca.crt": b"", "issuer.crt": b"", "issuer.key": b"k"})
    assert str(caught.value) == (
        "invalid CA: ca.crt, issuer.crt are empty; restore the contents, or remove all three "
        "to let sentry generate a new CA"
    )


async def test_a_file_removed_while_running_is_refused_on_reload(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert (await store.load(SETTINGS)).generated
    (tmp_path / "issuer.key").unlink()
    before = _contents(tmp_path)
    with pytest.raises(CredentialsError, match=r"^incomplete CA in .*: missing issuer\.key "):
        await store.load(SETTINGS)
    assert _contents(tmp_path) == before


async def test_files_in_different_directories_are_named_by_path(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    root = tmp_path / "a" / "root.pem"
    root.write_bytes(b"x")
    store = FileCredentialStore(
        CredentialFiles.from_flags(
            str(tmp_path / "b"), str(root), "issuer.crt", "issuer.key", "jwt.key", "jwks.json"
        )
    )
    with pytest.raises(CredentialsError) as caught:
        await store.load(SETTINGS)
    assert str(caught.value) == (
        f"incomplete CA: missing {tmp_path}/b/issuer.crt, {tmp_path}/b/issuer.key "
        f"(found {root}); {RECOVERY}"
    )


def test_write_set_stages_everything_before_renaming(tmp_path: Path) -> None:
    """A file that cannot be staged leaves no file renamed and no temporary behind."""
    targets = [(str(tmp_path / "ca.crt"), b"a"), (str(tmp_path / "nope" / "issuer.crt"), b"b")]
    with pytest.raises(CredentialsError, match=r"failed to write .*issuer\.crt"):
        write_private_set(targets)
    assert list(tmp_path.iterdir()) == []


async def test_a_rename_that_fails_midway_leaves_an_explained_partial_set(tmp_path: Path) -> None:
    (tmp_path / "issuer.crt").mkdir()  # a rename over a directory fails for real
    targets = [(str(tmp_path / name), name.encode()) for name in NAMES]
    with pytest.raises(CredentialsError, match=r"failed to write .*issuer\.crt"):
        write_private_set(targets)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt", "issuer.crt"]
    (tmp_path / "issuer.crt").rmdir()
    with pytest.raises(CredentialsError) as caught:
        await _store(tmp_path).load(SETTINGS)
    assert str(caught.value) == (
        f"incomplete CA in {tmp_path}: missing issuer.crt, issuer.key (found ca.crt); {RECOVERY}"
    )
    assert _contents(tmp_path) == {"ca.crt": b"ca.crt"}


def test_write_private_replaces_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "issuer.key"
    target.write_bytes(b"old")
    target.chmod(0o644)
    write_private(str(target), b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["issuer.key"]


def test_only_regular_files_named_like_ours_are_removed(tmp_path: Path) -> None:
    ours = tmp_path / ".tmp-issuer.key-abcdefgh"
    ours.write_bytes(b"key")
    (tmp_path / ".tmp-ca.crt-12345678").mkdir()
    (tmp_path / ".tmp-issuer.crt-zzzzzzzz").symlink_to(tmp_path / "elsewhere")
    (tmp_path / ".tmp-jwt.key-abcdefgh").write_bytes(b"not a file we were asked about")
    removed = remove_leftovers([str(tmp_path / name) for name in NAMES])
    assert removed == [str(ours)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".tmp-ca.crt-12345678",
        ".tmp-issuer.crt-zzzzzzzz",
        ".tmp-jwt.key-abcdefgh",
    ]


def test_leftovers_of_a_missing_directory_are_nothing(tmp_path: Path) -> None:
    assert remove_leftovers([str(tmp_path / "nope" / "ca.crt")]) == []


@given(name=st.sampled_from(NAMES))
def test_every_temporary_name_mkstemp_draws_is_recognised(name: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        fd, path = tempfile.mkstemp(prefix=f".tmp-{name}-", dir=directory)
        os.close(fd)
        assert is_leftover(os.path.basename(path), NAMES)
        assert not is_leftover(os.path.basename(path), ["other.file"])


@given(entry=st.text(min_size=1, max_size=40).filter(lambda s: not s.startswith(".tmp-")))
def test_names_without_the_prefix_are_never_leftovers(entry: str) -> None:
    assert not is_leftover(entry, NAMES)
