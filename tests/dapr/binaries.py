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

import hashlib
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests import gobuild

TOOLS_DIR = Path(__file__).resolve().parent / "tools"
BINARIES = ("daprd", "operator", "placement", "sentry", "injector")
DAPRD_ENV = "DAPRPLANE_DAPRD"
BINARIES_ENV = "DAPRPLANE_DAPR_BINARIES"

_DAPR_MODULE = "github.com/dapr/dapr"
# daprd refuses to start without a component set chosen at build time; the tag only selects
# components, so the control-plane binaries build the same with or without it.
_BUILD_TAGS = "stablecomponents"

_TOOLS = gobuild.GoTools(
    directory=TOOLS_DIR,
    cache_name="dapr",
    log_tag="dapr-binaries",
    purpose="Dapr's binaries",
    instead=(
        f"set {BINARIES_ENV} to a directory holding prebuilt {', '.join(BINARIES)} "
        f"(and/or {DAPRD_ENV} to a daprd binary)"
    ),
    failure_hint=(
        ". If a module could not be downloaded, set GOPROXY to include a proxy that serves "
        "it, e.g. GOPROXY=file:///path/to/proxy-dir,https://proxy.golang.org,direct"
    ),
)


def dapr_version() -> str:
    """The ``github.com/dapr/dapr`` version pinned by the tools module, e.g. ``v1.18.3``."""
    return _TOOLS.required_version(_DAPR_MODULE)


def _build_flags() -> list[str]:
    version = dapr_version()
    # Stamp the release as Dapr's own release builds do: unstamped binaries call themselves
    # "edge", in their --version output and in the version every log line carries.
    stamps = {
        f"{_DAPR_MODULE}/pkg/buildinfo.version": version.removeprefix("v"),
        f"{_DAPR_MODULE}/pkg/buildinfo.gitversion": version,
        "github.com/dapr/kit/logger.DaprVersion": version.removeprefix("v"),
    }
    return ["-trimpath", f"-tags={_BUILD_TAGS}", f"-ldflags={gobuild.stamped_ldflags(stamps)}"]


def _package(name: str) -> str:
    return f"{_DAPR_MODULE}/cmd/{name}"


def cache_key() -> str:
    """``<dapr-version>-<hash>``: changes whenever the module files or the build flags do."""
    return f"{dapr_version()}-{_TOOLS.key_hash(_build_flags())}"


def cache_root() -> Path:
    return _TOOLS.cache_root()


def _check_names(names: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(names))
    unknown = [name for name in wanted if name not in BINARIES]
    if unknown:
        raise ValueError(f"unknown Dapr binaries {unknown}; known: {list(BINARIES)}")
    return wanted


def _missing(directory: Path, names: Iterable[str]) -> list[str]:
    return [name for name in names if not gobuild.executable(directory / name)]


def find_go() -> str:
    return _TOOLS.find_go()


def build(dest: Path, names: Sequence[str] = BINARIES) -> float:
    """Build ``names`` into ``dest``, each installed atomically; return the seconds taken."""
    names = _check_names(names)
    # One invocation for all of them: the packages they share are compiled once.
    return _TOOLS.build(
        dest,
        _build_flags(),
        [_package(name) for name in names],
        names,
        what=f"Dapr {dapr_version()} {', '.join(names)}",
        note=(
            "; a cold build takes minutes (about 7 on 2 cores), "
            "later runs reuse the cached binaries"
        ),
        version_text=f"{_DAPR_MODULE} {dapr_version()}\n",
    )


def _build_missing(names: Sequence[str]) -> Path:
    dest = cache_root() / cache_key()
    # Looks `build` up when called, so a stand-in set on this module is the one used.
    return _TOOLS.build_once(
        dest,
        lambda: not _missing(dest, names),
        lambda: build(dest, _missing(dest, names)),
        "Dapr's binaries",
    )


def _daprd_override() -> Path | None:
    value = os.environ.get(DAPRD_ENV)
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not gobuild.executable(path):
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
        _TOOLS.log(f"error: {error}")
        return 1
    print(directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
