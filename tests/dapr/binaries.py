"""Build (once) and locate Dapr's own binaries for benchmarks and interop tests.

Benchmarks run Dapr's control plane side by side with daprplane, and interop tests run a real
``daprd`` against daprplane, so both need the genuine binaries of the Dapr release daprplane
replaces. The version is pinned by the Go module in ``tests/dapr/tools``; binaries are built from
it into ``$XDG_CACHE_HOME/daprplane/dapr/<dapr-version>-<hash>/`` (``~/.cache`` when unset), where
``<hash>`` covers the module files and the build flags, and are reused from there.

Overrides, for binaries the user already has:

- ``DAPRPLANE_DAPR_BINARIES=<dir>``: a directory holding every binary (nothing is built);
- ``DAPRPLANE_DAPRD=<path>``: the ``daprd`` to use (the others are still built or taken from the
  directory above).

Building needs Go (``go`` on PATH, ``$GO``, or ``/usr/local/go/bin/go``) and a module proxy that
serves every module Dapr needs; ``GOPROXY`` from the environment is used as is.

``python -m tests.dapr.binaries [names...]`` builds what is missing and prints the directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent / "tools"
BINARIES = ("daprd", "operator", "placement", "sentry", "injector")
DAPRD_ENV = "DAPRPLANE_DAPRD"
BINARIES_ENV = "DAPRPLANE_DAPR_BINARIES"

_DAPR_MODULE = "github.com/dapr/dapr"
# daprd refuses to start without a component set chosen at build time; the tag only selects
# components, so the control-plane binaries build the same with or without it.
_BUILD_TAGS = "stablecomponents"
_PROGRESS_EVERY_SECONDS = 30.0


def dapr_version() -> str:
    """The ``github.com/dapr/dapr`` version pinned by the tools module, e.g. ``v1.18.3``."""
    text = (TOOLS_DIR / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(_DAPR_MODULE)}\s+(v\S+)", text, re.MULTILINE)
    if not match:
        raise RuntimeError(f"{_DAPR_MODULE} is not required by {TOOLS_DIR / 'go.mod'}")
    return match.group(1)


def _ldflags() -> str:
    version = dapr_version()
    # Stamp the release as Dapr's own release builds do: unstamped binaries call themselves
    # "edge", in their --version output and in the version every log line carries.
    stamps = {
        f"{_DAPR_MODULE}/pkg/buildinfo.version": version.removeprefix("v"),
        f"{_DAPR_MODULE}/pkg/buildinfo.gitversion": version,
        "github.com/dapr/kit/logger.DaprVersion": version.removeprefix("v"),
    }
    return " ".join(["-s", "-w", *(f"-X {name}={value}" for name, value in stamps.items())])


def _build_flags() -> list[str]:
    return ["-trimpath", f"-tags={_BUILD_TAGS}", f"-ldflags={_ldflags()}"]


def _package(name: str) -> str:
    return f"{_DAPR_MODULE}/cmd/{name}"


def cache_key() -> str:
    """``<dapr-version>-<hash>``: changes whenever the module files or the build flags do."""
    digest = hashlib.sha256()
    for file_name in ("go.mod", "go.sum"):
        digest.update((TOOLS_DIR / file_name).read_bytes())
    digest.update(" ".join(_build_flags()).encode())
    return f"{dapr_version()}-{digest.hexdigest()[:10]}"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "daprplane" / "dapr"


def _check_names(names: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(names))
    unknown = [name for name in wanted if name not in BINARIES]
    if unknown:
        raise ValueError(f"unknown Dapr binaries {unknown}; known: {list(BINARIES)}")
    return wanted


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _missing(directory: Path, names: Iterable[str]) -> list[str]:
    return [name for name in names if not _executable(directory / name)]


def find_go() -> str:
    for candidate in (os.environ.get("GO"), shutil.which("go"), "/usr/local/go/bin/go"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "the Go toolchain is needed to build Dapr's binaries: put `go` on PATH (or set "
        f"GO=/path/to/go), or set {BINARIES_ENV} to a directory holding prebuilt "
        f"{', '.join(BINARIES)} (and/or {DAPRD_ENV} to a daprd binary)"
    )


def _log(message: str) -> None:
    print(f"[dapr-binaries] {message}", file=sys.stderr, flush=True)


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries that run anywhere; module files are the pinned ones, never rewritten.
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = f"{env.get('GOFLAGS', '')} -mod=readonly -buildvcs=false".strip()
    env["GOWORK"] = "off"
    env.setdefault("GOTOOLCHAIN", "local")
    return env


def _run_with_progress(command: Sequence[str], env: dict[str, str], what: str) -> None:
    started = time.monotonic()
    with subprocess.Popen(command, cwd=TOOLS_DIR, env=env) as process:
        try:
            while True:
                try:
                    returncode = process.wait(timeout=_PROGRESS_EVERY_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    _log(f"still building {what}: {time.monotonic() - started:.0f}s elapsed")
        except BaseException:
            # Interrupted (Ctrl-C, test timeout): do not leave a compiler running behind us.
            process.kill()
            raise
    if returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command)}` failed with exit code {returncode} (see go's messages above). "
            "If a module could not be downloaded, set GOPROXY to include a proxy that serves "
            "it, e.g. GOPROXY=file:///path/to/proxy-dir,https://proxy.golang.org,direct"
        )


def build(dest: Path, names: Sequence[str] = BINARIES) -> float:
    """Build ``names`` into ``dest``, each installed atomically; return the seconds taken."""
    names = _check_names(names)
    go = find_go()
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=dest))
    what = f"Dapr {dapr_version()} {', '.join(names)}"
    _log(
        f"building {what} into {dest}; a cold build takes minutes (about 7 on 2 cores), "
        "later runs reuse the cached binaries"
    )
    started = time.monotonic()
    try:
        # One invocation for all of them: the packages they share are compiled once.
        command = [go, "build", *_build_flags(), "-o", f"{staging}{os.sep}"]
        command += [_package(name) for name in names]
        _run_with_progress(command, _build_env(), what)
        missing = _missing(staging, names)
        if missing:
            raise RuntimeError(f"go build did not produce {missing} in {staging}")
        for name in names:
            os.replace(staging / name, dest / name)
        (dest / "VERSION").write_text(f"{_DAPR_MODULE} {dapr_version()}\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    elapsed = time.monotonic() - started
    _log(f"built {what} in {elapsed:.0f}s")
    return elapsed


def _build_missing(names: Sequence[str]) -> Path:
    dest = cache_root() / cache_key()
    if not _missing(dest, names):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Serialise concurrent builds (parallel test runs, xdist workers): the loser waits, then
    # finds the binaries in place.
    with open(dest.parent / f".{dest.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"waiting for another process building Dapr's binaries into {dest}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        missing = _missing(dest, names)
        if missing:
            build(dest, missing)
    return dest


def _daprd_override() -> Path | None:
    value = os.environ.get(DAPRD_ENV)
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not _executable(path):
        raise RuntimeError(f"{DAPRD_ENV}={value} is not an executable file")
    return path


def _binaries_override() -> Path | None:
    value = os.environ.get(BINARIES_ENV)
    return Path(value).expanduser().resolve() if value else None


def _overlay(daprd: Path, others: Path, names: Sequence[str]) -> Path:
    """A directory of symlinks: ``daprd`` to the override, every other name into ``others``."""
    identity = f"{daprd}\0{others}".encode()
    directory = cache_root() / f"overlay-{hashlib.sha256(identity).hexdigest()[:10]}"
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = daprd if name == "daprd" else others / name
        # Replace atomically so concurrent callers never see a missing or half-made link.
        temporary = directory / f".{name}.{os.getpid()}"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(target)
        os.replace(temporary, directory / name)
    return directory


def ensure_binaries(names: Iterable[str] = BINARIES) -> Path:
    """Return a directory holding every binary in ``names``, building what is missing.

    ``DAPRPLANE_DAPR_BINARIES`` replaces the build with a directory of prebuilt binaries;
    ``DAPRPLANE_DAPRD`` supplies ``daprd``, in which case the returned directory holds symlinks.
    """
    wanted = _check_names(names)
    daprd = _daprd_override() if "daprd" in wanted else None
    others = tuple(name for name in wanted if daprd is None or name != "daprd")
    prebuilt = _binaries_override()
    if prebuilt is not None:
        missing = _missing(prebuilt, others)
        if missing:
            raise RuntimeError(f"{BINARIES_ENV}={prebuilt} lacks executable {missing}")
        base = prebuilt
    else:
        base = _build_missing(others) if others else cache_root() / cache_key()
    if daprd is None:
        return base
    return _overlay(daprd, base, wanted)


def binary(name: str) -> Path:
    """The path of one Dapr binary (``daprd``, ``operator``, ...), building it if needed."""
    (name,) = _check_names([name])
    if name == "daprd":
        override = _daprd_override()
        if override is not None:
            return override
    return ensure_binaries([name]) / name


def main(argv: Sequence[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv) or list(BINARIES)
    try:
        directory = ensure_binaries(names)
    except (ValueError, RuntimeError) as error:
        _log(f"error: {error}")
        return 1
    print(directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
