"""Build (once) and locate the kube-apiserver and etcd binaries for tests.

The versions are pinned by the Go module in ``tests/k8s/tools``. Binaries are
built into ``$XDG_CACHE_HOME/daprplane/kube/<key>/`` (``~/.cache`` when unset),
where ``<key>`` names both versions plus a hash of the module files and build
flags, and are reused from there. ``DAPRPLANE_KUBE_ASSETS=<dir>`` points at a
directory holding prebuilt ``kube-apiserver`` and ``etcd`` instead.

``python -m tests.k8s.assets`` builds if needed and prints the directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests import gobuild

TOOLS_DIR = Path(__file__).resolve().parent / "tools"
BINARIES = ("kube-apiserver", "etcd")
ASSETS_ENV = "DAPRPLANE_KUBE_ASSETS"

_KUBE_MODULE = "k8s.io/kubernetes"
_ETCD_MODULE = "go.etcd.io/etcd/server/v3"
_PACKAGES = ("k8s.io/kubernetes/cmd/kube-apiserver", _ETCD_MODULE)
# The etcd main package is the module root, so go names it after the last
# path element without the major version suffix: "server".
_GO_NAMES = {"etcd": "server"}

_TOOLS = gobuild.GoTools(
    directory=TOOLS_DIR,
    cache_name="kube",
    log_tag="kube-assets",
    purpose="kube-apiserver and etcd for the k8s tests",
    instead=f"set {ASSETS_ENV} to a directory holding prebuilt kube-apiserver and etcd binaries",
)


def kube_version() -> str:
    return _TOOLS.required_version(_KUBE_MODULE)


def etcd_version() -> str:
    return _TOOLS.required_version(_ETCD_MODULE)


def _build_flags() -> list[str]:
    version = kube_version()
    major, minor = version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    # Stamp the real version: /version reports it and the apiserver derives
    # its binary (and so emulation) version from it.
    stamps = {
        f"{pkg}.gitVersion": version,
        f"{pkg}.gitMajor": major,
        f"{pkg}.gitMinor": minor,
        f"{pkg}.gitTreeState": "clean",
        f"{pkg}.buildDate": "1970-01-01T00:00:00Z",
    }
    return ["-trimpath", f"-ldflags={gobuild.stamped_ldflags(stamps)}"]


def cache_key() -> str:
    # The hash covers the whole command line (with a placeholder output
    # directory), as it always has: keys of existing caches stay valid.
    command = gobuild.go_build_args(_build_flags(), _PACKAGES, Path("out"))
    return f"{kube_version()}-etcd-{etcd_version()}-{_TOOLS.key_hash(command)}"


def cache_root() -> Path:
    return _TOOLS.cache_root()


def _complete(directory: Path) -> bool:
    return all(gobuild.executable(directory / name) for name in BINARIES)


def find_go() -> str:
    return _TOOLS.find_go()


def _what() -> str:
    return f"kube-apiserver {kube_version()} and etcd {etcd_version()}"


def build(dest: Path) -> float:
    """Build both binaries into ``dest`` (each moved in whole); return seconds taken."""
    return _TOOLS.build(
        dest,
        _build_flags(),
        _PACKAGES,
        BINARIES,
        go_names=_GO_NAMES,
        what=_what(),
        note=" (cold builds take several minutes)",
        version_text=f"kube-apiserver {kube_version()}\netcd {etcd_version()}\n",
    )


def ensure_assets() -> Path:
    """Return a directory holding ``kube-apiserver`` and ``etcd``, building if needed."""
    override = os.environ.get(ASSETS_ENV)
    if override:
        directory = Path(override).expanduser()
        if not _complete(directory):
            raise RuntimeError(f"{ASSETS_ENV}={override} lacks executable {BINARIES}")
        return directory
    dest = cache_root() / cache_key()
    return _TOOLS.build_once(dest, lambda: _complete(dest), lambda: build(dest), _what())


def main() -> int:
    directory = ensure_assets()
    print(directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
