"""Test-suite wiring shared by every directory."""

from __future__ import annotations

import sys
from pathlib import Path

# The suite tests the installed distribution (with its compiled ring), not the source tree next
# to it. pytest puts the repository root first on sys.path so that ``tests.*`` helpers import;
# moving it last keeps those imports working while ``daprplane`` resolves to site-packages.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT in sys.path:
    sys.path.remove(_ROOT)
    sys.path.append(_ROOT)

# The real kube-apiserver + etcd test cluster (fixtures kube_cluster, kube_namespace, kube_api).
pytest_plugins = ["tests.k8s.fixtures"]
