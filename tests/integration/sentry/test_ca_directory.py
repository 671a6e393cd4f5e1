"""The standalone CA directory through the real launcher: a partial set of ``ca.crt``,
``issuer.crt`` and ``issuer.key`` stops sentry and is never generated over; an empty file is
invalid, not missing; temporary files of an interrupted write are removed at start; an empty
directory still gets a generated CA."""

from __future__ import annotations

import itertools
import os
import stat
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from daprplane.plugins.sentry.ca import bundle as bundle_mod
from tests.integration.launchers import fatal_message, free_port, run
from tests.integration.sentry.conftest import run_sentry

NAMES = ("ca.crt", "issuer.crt", "issuer.key")
RECOVERY = "remove all three to let sentry generate a new CA, or restore the missing ones"
#: Every way to have some of the three files but not all: 3 singles and 3 pairs.
PARTIAL_SETS = [subset for size in (1, 2) for subset in itertools.combinations(NAMES, size)]


def _bundle_files() -> dict[str, bytes]:
    bundle = bundle_mod.generate("localhost", "default", timedelta(minutes=15))
    return dict(
        zip(
            NAMES,
            (bundle.trust_anchors_pem, bundle.issuer_chain_pem, bundle.issuer_key_pem),
            strict=True,
        )
    )


def _start(tmp_path: Path, creds: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "config.yaml").write_text("")
    return run(
        "daprplane-sentry",
        f"--config={tmp_path / 'config.yaml'}",
        f"--issuer-credentials={creds}",
        f"--port={free_port()}",
        f"--healthz-port={free_port()}",
        f"--metrics-port={free_port()}",
        "--log-as-json",
        timeout=30,
    )


def _contents(directory: Path) -> dict[str, bytes]:
    return {entry.name: entry.read_bytes() for entry in directory.iterdir()}


@pytest.mark.parametrize("present", PARTIAL_SETS, ids="+".join)
def test_partial_set_is_refused_and_left_as_it_was(tmp_path: Path, present: tuple[str]) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    files = _bundle_files()
    for name in present:
        (creds / name).write_bytes(files[name])
    before = _contents(creds)
    missing = [name for name in NAMES if name not in present]

    message = fatal_message(_start(tmp_path, creds))

    assert message == (
        f"error creating CA: incomplete CA in {creds}: missing {', '.join(missing)} "
        f"(found {', '.join(present)}); {RECOVERY}"
    )
    assert _contents(creds) == before  # survivors byte-identical, nothing added


def test_partial_set_after_an_interrupted_write_says_so(tmp_path: Path) -> None:
    """What a crash between the renames of a generated CA leaves: one file renamed, the other
    two still temporary. The temporaries go; the survivor stays; the message explains."""
    creds = tmp_path / "creds"
    creds.mkdir()
    files = _bundle_files()
    (creds / "ca.crt").write_bytes(files["ca.crt"])
    (creds / ".tmp-issuer.crt-a1b2c3d4").write_bytes(files["issuer.crt"])
    (creds / ".tmp-issuer.key-z_9y8x7w").write_bytes(files["issuer.key"])

    message = fatal_message(_start(tmp_path, creds))

    assert message == (
        f"error creating CA: incomplete CA in {creds}: missing issuer.crt, issuer.key "
        "(found ca.crt; an interrupted write left temporary files, now removed); "
        f"{RECOVERY}"
    )
    assert _contents(creds) == {"ca.crt": files["ca.crt"]}


@pytest.mark.parametrize("empty", NAMES)
def test_empty_file_is_invalid_not_missing(tmp_path: Path, empty: str) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    files = _bundle_files()
    files[empty] = b""
    for name, data in files.items():
        (creds / name).write_bytes(data)

    message = fatal_message(_start(tmp_path, creds))

    assert message == (
        f"error creating CA: invalid CA in {creds}: {empty} is empty; restore the contents, "
        "or remove all three to let sentry generate a new CA"
    )
    assert _contents(creds) == files


def test_empty_file_beside_a_missing_one_is_named_as_empty(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "ca.crt").write_bytes(b"")
    (creds / "issuer.crt").write_bytes(_bundle_files()["issuer.crt"])
    before = _contents(creds)

    message = fatal_message(_start(tmp_path, creds))

    assert message == (
        f"error creating CA: incomplete CA in {creds}: missing issuer.key "
        f"(found ca.crt (empty), issuer.crt); {RECOVERY}"
    )
    assert _contents(creds) == before


def test_empty_directory_generates_and_removes_leftovers(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    key_bytes = _bundle_files()["issuer.key"]
    leftovers = [".tmp-issuer.key-q1w2e3r4", ".tmp-abcd_123"]  # ours, and the older naming
    for name in leftovers:
        (creds / name).write_bytes(key_bytes)
    # Not written by sentry, so not sentry's to remove.
    (creds / ".tmp-notes.txt").write_bytes(b"keep")
    (creds / "README").write_bytes(b"keep")

    with run_sentry(creds) as sentry:
        code, out = sentry.stop()
    assert code == 0, out

    entries = sorted(entry.name for entry in creds.iterdir())
    assert entries == sorted([*NAMES, ".tmp-notes.txt", "README"])
    for name in NAMES:
        assert stat.S_IMODE(os.stat(creds / name).st_mode) == 0o600
    bundle_mod.verify(*((creds / name).read_bytes() for name in NAMES))
    assert "Root and issuer certs not found: generating self signed CA" in out
    assert "left behind by an interrupted write" in out
