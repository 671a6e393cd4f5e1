"""Kubernetes access shared by every component: client configuration, raw JSON calls, informers,
leader election on a Lease."""

from daprplane.core.kube.client import (
    ClusterConfig,
    KubeApiError,
    KubeConfigError,
    api_client,
    load_cluster_config,
    new_api_client,
    path_of,
    request,
)
from daprplane.core.kube.informer import Informer, object_key
from daprplane.core.kube.leadership import Leadership, SingleNode
from daprplane.core.kube.lease import (
    LeaseConfigError,
    LeaseEnvironment,
    LeaseLeadership,
    LeaseTimings,
)

__all__ = [
    "ClusterConfig",
    "Informer",
    "KubeApiError",
    "KubeConfigError",
    "Leadership",
    "LeaseConfigError",
    "LeaseEnvironment",
    "LeaseLeadership",
    "LeaseTimings",
    "SingleNode",
    "api_client",
    "load_cluster_config",
    "new_api_client",
    "object_key",
    "path_of",
    "request",
]
