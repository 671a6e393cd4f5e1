"""Build (once) and locate the kube-apiserver and etcd binaries for tests.

The versions are pinned by the Go module in ``tests/k8s/tools``. Binaries are
built into ``$XDG_CACHE_HOME/daprplane/kube/<key>/`` (``~/.cache`` when unset),
where ``<key>`` names both versions plus a hash of the module files and build
flags, and are reused from there. ``DAPRPLANE_KUBE_ASSETS=<dir>`` points at a
directory holding prebuilt ``kube-apiserver`` and ``etcd`` instead.

``python -m tests.k8s.assets`` builds if needed and prints the directory.
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
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent / "tools"
BINARIES = ("kube-apiserver", "etcd")
ASSETS_ENV = "DAPRPLANE_KUBE_ASSETS"

_KUBE_MODULE = "k8s.io/kubernetes"
_ETCD_MODULE = "go.etcd.io/etcd/server/v3"


def _required_version(module: str) -> str:
    text = (TOOLS_DIR / "go.mod").read_text()
    match = re.search(rf"^\s*{re.escape(module)}\s+(v\S+)", text, re.MULTILINE)
    if not match:
        raise RuntimeError(f"{module} is not required by {TOOLS_DIR / 'go.mod'}")
    return match.group(1)


def kube_version() -> str:
    return _required_version(_KUBE_MODULE)


def etcd_version() -> str:
    return _required_version(_ETCD_MODULE)


def _ldflags() -> str:
    version = kube_version()
    major, minor = version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    # Stamp the real version: /version reports it and the apiserver derives
    # its binary (and so emulation) version from it.
    return " ".join(
        [
            "-s",
            "-w",
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    )


def _build_args(out_dir: Path) -> list[str]:
    return [
        "build",
        "-trimpath",
        f"-ldflags={_ldflags()}",
        "-o",
        f"{out_dir}{os.sep}",
        "k8s.io/kubernetes/cmd/kube-apiserver",
        _ETCD_MODULE,
    ]


def cache_key() -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((TOOLS_DIR / name).read_bytes())
    digest.update(" ".join(_build_args(Path("out"))).encode())
    return f"{kube_version()}-etcd-{etcd_version()}-{digest.hexdigest()[:10]}"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "daprplane" / "kube"


def _complete(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in BINARIES)


def find_go() -> str:
    for candidate in (os.environ.get("GO"), shutil.which("go"), "/usr/local/go/bin/go"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "the Go toolchain is needed to build kube-apiserver and etcd for the k8s tests: "
        f"put `go` on PATH (or set GO=/path/to/go), or set {ASSETS_ENV} to a directory "
        "holding prebuilt kube-apiserver and etcd binaries"
    )


def _log(message: str) -> None:
    print(f"[kube-assets] {message}", file=sys.stderr, flush=True)


def build(dest: Path) -> float:
    """Build both binaries into ``dest`` (atomically); return seconds taken."""
    go = find_go()
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
    env = dict(os.environ)
    env.update(CGO_ENABLED="0", GOFLAGS="-mod=readonly -buildvcs=false", GOWORK="off")
    env.setdefault("GOTOOLCHAIN", "local")
    _log(
        f"building kube-apiserver {kube_version()} and etcd {etcd_version()} "
        f"into {dest} (cold builds take several minutes)"
    )
    started = time.monotonic()
    try:
        subprocess.run([go, *_build_args(staging)], cwd=TOOLS_DIR, env=env, check=True)
        # The etcd main package is the module root, so go names it after the
        # last path element without the major version suffix: "server".
        (staging / "server").rename(staging / "etcd")
        if not _complete(staging):
            raise RuntimeError(f"go build did not produce {BINARIES} in {staging}")
        (staging / "VERSION").write_text(
            f"kube-apiserver {kube_version()}\netcd {etcd_version()}\n"
        )
        staging.chmod(0o755)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    elapsed = time.monotonic() - started
    _log(f"built in {elapsed:.0f}s")
    return elapsed


def ensure_assets() -> Path:
    """Return a directory holding ``kube-apiserver`` and ``etcd``, building if needed."""
    override = os.environ.get(ASSETS_ENV)
    if override:
        directory = Path(override).expanduser()
        if not _complete(directory):
            raise RuntimeError(f"{ASSETS_ENV}={override} lacks executable {BINARIES}")
        return directory
    dest = cache_root() / cache_key()
    if _complete(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Serialise concurrent builds (parallel test runs, xdist workers).
    with open(dest.parent / f".{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _complete(dest):
            if dest.exists():
                shutil.rmtree(dest)
            build(dest)
    return dest


def main() -> int:
    directory = ensure_assets()
    print(directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
