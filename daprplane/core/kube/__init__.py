"""Kubernetes access shared by every component: client configuration, raw JSON calls, informers,
leader election on a Lease.

The names below are loaded on first use: importing one submodule (placement imports
``leadership`` for its base class) must not pull in the informer, the HTTP client and YAML,
which cost a launcher that never talks to an API server a tenth of a second at start.
"""

from __future__ import annotations

from daprplane.core.lazy import lazy_attributes

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


__getattr__ = lazy_attributes(__name__, _HOMES)
