"""The Dapr resources the operator serves to sidecars, and where the API server keeps them.

Each :class:`ResourceKind` names a collection (group, version, plural), whether sidecars see only
the objects scoped to them on streams, and how its secret references are resolved before the
object is sent. The gRPC API is generic over these; adding a kind is adding a row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from daprplane.core.kube.client import path_of

GROUP = "dapr.io"


@dataclass(frozen=True)
class ResourceKind:
    kind: str
    plural: str
    version: str = "v1alpha1"
    group: str = GROUP
    #: Kinds without ``scopes`` (Configuration) reach every app in the namespace.
    scoped: bool = True
    #: Optional kinds (newer CRDs) may be absent from a cluster: they list as empty.
    optional: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    def collection_path(self, namespace: str = "") -> str:
        """The cluster-wide collection, or one namespace's."""
        prefix = ("apis", self.group, self.version) if self.group else ("api", self.version)
        if namespace:
            return path_of(*prefix, "namespaces", namespace, self.plural)
        return path_of(*prefix, self.plural)

    def object_path(self, namespace: str, name: str) -> str:
        return self.collection_path(namespace) + path_of(name)


COMPONENTS = ResourceKind("Component", "components")
CONFIGURATIONS = ResourceKind("Configuration", "configurations", scoped=False)
# Sidecars are served v2alpha1 (the storage version); v1alpha1 objects convert through /convert.
SUBSCRIPTIONS = ResourceKind("Subscription", "subscriptions", version="v2alpha1")
RESILIENCIES = ResourceKind("Resiliency", "resiliencies")
HTTP_ENDPOINTS = ResourceKind("HTTPEndpoint", "httpendpoints")
MCP_SERVERS = ResourceKind("MCPServer", "mcpservers", optional=True)
WORKFLOW_ACCESS_POLICIES = ResourceKind(
    "WorkflowAccessPolicy", "workflowaccesspolicies", optional=True
)

DAPR_KINDS: tuple[ResourceKind, ...] = (
    COMPONENTS,
    CONFIGURATIONS,
    SUBSCRIPTIONS,
    RESILIENCIES,
    HTTP_ENDPOINTS,
    MCP_SERVERS,
    WORKFLOW_ACCESS_POLICIES,
)

DEPLOYMENTS = ResourceKind("Deployment", "deployments", version="v1", group="apps")
STATEFULSETS = ResourceKind("StatefulSet", "statefulsets", version="v1", group="apps")
SERVICES = ResourceKind("Service", "services", version="v1", group="")
SECRETS = ResourceKind("Secret", "secrets", version="v1", group="")
PODS = ResourceKind("Pod", "pods", version="v1", group="")
