"""Test-suite wiring shared by every directory."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import settings

# The suite tests the installed distribution (with its compiled ring), not the source tree next
# to it. pytest puts the repository root first on sys.path so that ``tests.*`` helpers import;
# with the root moved last, ``daprplane`` is imported here from site-packages, and once imported
# it stays that module even when pytest puts the root first again for later test modules.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT in sys.path:
    sys.path.remove(_ROOT)
    sys.path.append(_ROOT)
import daprplane  # noqa: E402
import daprplane.ring  # noqa: E402, F401

sys.path.remove(_ROOT)
sys.path.insert(0, _ROOT)

# Machines here are shared and noisy: a slow example is not a failure (no per-example deadline).
settings.register_profile("daprplane", deadline=None)
settings.load_profile("daprplane")

# The real kube-apiserver + etcd test cluster (fixtures kube_cluster, kube_namespace, kube_api).
pytest_plugins = ["tests.k8s.fixtures"]
