"""Kubernetes access shared by every component: client configuration, raw JSON calls, informers."""

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

__all__ = [
    "ClusterConfig",
    "Informer",
    "KubeApiError",
    "KubeConfigError",
    "api_client",
    "load_cluster_config",
    "new_api_client",
    "object_key",
    "path_of",
    "request",
]
