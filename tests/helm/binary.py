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

import os
from pathlib import Path

from tests import gobuild

TOOLS_DIR = Path(__file__).resolve().parent / "tools"
HELM_ENV = "DAPRPLANE_HELM"

_HELM_MODULE = "helm.sh/helm/v3"
_CLIENT_GO_MODULE = "k8s.io/client-go"

_TOOLS = gobuild.GoTools(
    directory=TOOLS_DIR,
    cache_name="helm",
    log_tag="helm-binary",
    purpose="helm for the chart tests",
    instead=f"set {HELM_ENV} to a helm binary",
)


def helm_version() -> str:
    """The ``helm.sh/helm/v3`` version pinned by the tools module, e.g. ``v3.21.4``."""
    return _TOOLS.required_version(_HELM_MODULE)


def kube_minor_version() -> int:
    """The Kubernetes minor version helm is built against (client-go ``v0.36.2`` -> 36)."""
    return int(_TOOLS.required_version(_CLIENT_GO_MODULE).lstrip("v").split(".")[1])


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
    return ["-trimpath", f"-ldflags={gobuild.stamped_ldflags(stamps)}"]


def cache_key() -> str:
    """``<helm-version>-<hash>``: changes whenever the module files or the build flags do."""
    return f"{helm_version()}-{_TOOLS.key_hash(_build_flags())}"


def cache_root() -> Path:
    return _TOOLS.cache_root()


def find_go() -> str:
    return _TOOLS.find_go()


def build(dest: Path) -> float:
    """Build helm into ``dest/helm`` (installed atomically); return the seconds taken."""
    return _TOOLS.build(
        dest,
        _build_flags(),
        [f"{_HELM_MODULE}/cmd/helm"],
        ["helm"],
        what=f"helm {helm_version()}",
        note="; a cold build takes a few minutes, later runs reuse the cached binary",
        version_text=f"{_HELM_MODULE} {helm_version()}\n",
    )


def helm_binary() -> Path:
    """Return the path of a helm binary, building the pinned version if needed."""
    override = os.environ.get(HELM_ENV)
    if override:
        path = Path(override).expanduser()
        if not gobuild.executable(path):
            raise RuntimeError(f"{HELM_ENV}={override} is not an executable file")
        return path
    dest = cache_root() / cache_key()
    binary = dest / "helm"
    # Looks `build` up when called, so a stand-in set on this module is the one used.
    _TOOLS.build_once(dest, lambda: gobuild.executable(binary), lambda: build(dest), "helm")
    return binary


def main() -> int:
    print(helm_binary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
