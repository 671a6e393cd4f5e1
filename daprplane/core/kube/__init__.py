"""Kubernetes access shared by every component: client configuration, raw JSON calls, informers,
leader election on a Lease.

The names below are loaded on first use: importing one submodule (placement imports
``leadership`` for its base class) must not pull in the informer, the HTTP client and YAML,
which cost a launcher that never talks to an API server a tenth of a second at start.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ClusterConfig": "client",
    "KubeApiError": "client",
    "KubeConfigError": "client",
    "api_client": "client",
    "load_cluster_config": "client",
    "new_api_client": "client",
    "path_of": "client",
    "request": "client",
    "Informer": "informer",
    "object_key": "informer",
    "Leadership": "leadership",
    "SingleNode": "leadership",
    "LeaseConfigError": "lease",
    "LeaseEnvironment": "lease",
    "LeaseLeadership": "lease",
    "LeaseTimings": "lease",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
