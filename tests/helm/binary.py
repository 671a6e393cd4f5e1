"""Build (once) and locate the ``helm`` binary the chart tests render with.

The chart in ``deploy/charts/daprplane`` is linted and rendered by a real helm. The version is
pinned by the Go module in ``tests/helm/tools``; helm is built from it into
``$XDG_CACHE_HOME/daprplane/helm/<version>-<hash>/helm`` (``~/.cache`` when unset), where ``<hash>``
covers the module files and the build flags, and is reused from there.
``DAPRPLANE_HELM=<path>`` names a helm binary to use instead (nothing is built).

Building needs Go (``go`` on PATH, ``$GO``, or ``/usr/local/go/bin/go``).

``python -m tests.helm.binary`` builds if needed and prints the path.
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
from collections.abc import Sequence
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent / "tools"
HELM_ENV = "DAPRPLANE_HELM"

_HELM_MODULE = "helm.sh/helm/v3"
_CLIENT_GO_MODULE = "k8s.io/client-go"
_PROGRESS_EVERY_SECONDS = 30.0


def _required_version(module: str) -> str:
    text = (TOOLS_DIR / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.MULTILINE)
    if not match:
        raise RuntimeError(f"{module} is not required by {TOOLS_DIR / 'go.mod'}")
    return match.group(1)


def helm_version() -> str:
    """The ``helm.sh/helm/v3`` version pinned by the tools module, e.g. ``v3.21.4``."""
    return _required_version(_HELM_MODULE)


def kube_minor_version() -> int:
    """The Kubernetes minor version helm is built against (client-go ``v0.36.2`` -> 36)."""
    return int(_required_version(_CLIENT_GO_MODULE).lstrip("v").split(".")[1])


def _build_flags() -> list[str]:
    # Stamp what helm's own release builds stamp: its version (`helm version`), and the
    # Kubernetes version of its client libraries, which `helm template` and `helm lint` report
    # as .Capabilities.KubeVersion (unstamped builds claim v1.20).
    minor = kube_minor_version()
    stamps = {
        f"{_HELM_MODULE}/internal/version.version": helm_version(),
        f"{_HELM_MODULE}/pkg/chartutil.k8sVersionMajor": "1",
        f"{_HELM_MODULE}/pkg/chartutil.k8sVersionMinor": str(minor),
        f"{_HELM_MODULE}/pkg/lint/rules.k8sVersionMajor": "1",
        f"{_HELM_MODULE}/pkg/lint/rules.k8sVersionMinor": str(minor),
    }
    ldflags = " ".join(["-s", "-w", *(f"-X {name}={value}" for name, value in stamps.items())])
    return ["-trimpath", f"-ldflags={ldflags}"]


def cache_key() -> str:
    """``<helm-version>-<hash>``: changes whenever the module files or the build flags do."""
    digest = hashlib.sha256()
    for file_name in ("go.mod", "go.sum"):
        digest.update((TOOLS_DIR / file_name).read_bytes())
    digest.update(" ".join(_build_flags()).encode())
    return f"{helm_version()}-{digest.hexdigest()[:10]}"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "daprplane" / "helm"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_go() -> str:
    for candidate in (os.environ.get("GO"), shutil.which("go"), "/usr/local/go/bin/go"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "the Go toolchain is needed to build helm for the chart tests: put `go` on PATH (or set "
        f"GO=/path/to/go), or set {HELM_ENV} to a helm binary"
    )


def _log(message: str) -> None:
    print(f"[helm-binary] {message}", file=sys.stderr, flush=True)


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    # A static binary that runs anywhere; module files are the pinned ones, never rewritten.
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = f"{env.get('GOFLAGS', '')} -mod=readonly -buildvcs=false".strip()
    env["GOWORK"] = "off"
    env.setdefault("GOTOOLCHAIN", "local")
    return env


def _run_with_progress(command: Sequence[str], env: dict[str, str]) -> None:
    started = time.monotonic()
    with subprocess.Popen(command, cwd=TOOLS_DIR, env=env) as process:
        try:
            while True:
                try:
                    returncode = process.wait(timeout=_PROGRESS_EVERY_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    _log(f"still building helm: {time.monotonic() - started:.0f}s elapsed")
        except BaseException:
            # Interrupted (Ctrl-C, test timeout): do not leave a compiler running behind us.
            process.kill()
            raise
    if returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command)}` failed with exit code {returncode} (see go's messages above)"
        )


def build(dest: Path) -> float:
    """Build helm into ``dest/helm`` (installed atomically); return the seconds taken."""
    go = find_go()
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=dest))
    _log(
        f"building helm {helm_version()} into {dest}; a cold build takes a few minutes, "
        "later runs reuse the cached binary"
    )
    started = time.monotonic()
    try:
        output = staging / "helm"
        command = [go, "build", *_build_flags(), "-o", str(output), f"{_HELM_MODULE}/cmd/helm"]
        _run_with_progress(command, _build_env())
        if not _executable(output):
            raise RuntimeError(f"go build did not produce {output}")
        os.replace(output, dest / "helm")
        (dest / "VERSION").write_text(f"{_HELM_MODULE} {helm_version()}\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    elapsed = time.monotonic() - started
    _log(f"built helm {helm_version()} in {elapsed:.0f}s")
    return elapsed


def helm_binary() -> Path:
    """Return the path of a helm binary, building the pinned version if needed."""
    override = os.environ.get(HELM_ENV)
    if override:
        path = Path(override).expanduser()
        if not _executable(path):
            raise RuntimeError(f"{HELM_ENV}={override} is not an executable file")
        return path
    dest = cache_root() / cache_key()
    binary = dest / "helm"
    if _executable(binary):
        return binary
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Serialise concurrent builds (parallel test runs, xdist workers): the loser waits, then
    # finds the binary in place.
    with open(dest.parent / f".{dest.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"waiting for another process building helm into {dest}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if not _executable(binary):
            build(dest)
    return binary


def main() -> int:
    print(helm_binary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
