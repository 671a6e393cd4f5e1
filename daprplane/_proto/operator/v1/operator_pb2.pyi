from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResourceEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNKNOWN: _ClassVar[ResourceEventType]
    CREATED: _ClassVar[ResourceEventType]
    UPDATED: _ClassVar[ResourceEventType]
    DELETED: _ClassVar[ResourceEventType]
UNKNOWN: ResourceEventType
CREATED: ResourceEventType
UPDATED: ResourceEventType
DELETED: ResourceEventType

class ComponentUpdateRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class ComponentUpdateEvent(_message.Message):
    __slots__ = ("component", "type")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    component: bytes
    type: ResourceEventType
    def __init__(self, component: _Optional[bytes] = ..., type: _Optional[_Union[ResourceEventType, str]] = ...) -> None: ...

class ListComponentsRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class ListComponentResponse(_message.Message):
    __slots__ = ("components",)
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    components: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, components: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetConfigurationRequest(_message.Message):
    __slots__ = ("name", "namespace")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    name: str
    namespace: str
    def __init__(self, name: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class GetConfigurationResponse(_message.Message):
    __slots__ = ("configuration",)
    CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    configuration: bytes
    def __init__(self, configuration: _Optional[bytes] = ...) -> None: ...

class ConfigurationUpdateRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class ConfigurationUpdateEvent(_message.Message):
    __slots__ = ("configuration", "type")
    CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    configuration: bytes
    type: ResourceEventType
    def __init__(self, configuration: _Optional[bytes] = ..., type: _Optional[_Union[ResourceEventType, str]] = ...) -> None: ...

class ListSubscriptionsRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class ListSubscriptionsResponse(_message.Message):
    __slots__ = ("subscriptions",)
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    subscriptions: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, subscriptions: _Optional[_Iterable[bytes]] = ...) -> None: ...

class SubscriptionUpdateRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class SubscriptionUpdateEvent(_message.Message):
    __slots__ = ("subscription", "type")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    subscription: bytes
    type: ResourceEventType
    def __init__(self, subscription: _Optional[bytes] = ..., type: _Optional[_Union[ResourceEventType, str]] = ...) -> None: ...

class GetResiliencyRequest(_message.Message):
    __slots__ = ("name", "namespace")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    name: str
    namespace: str
    def __init__(self, name: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class GetResiliencyResponse(_message.Message):
    __slots__ = ("resiliency",)
    RESILIENCY_FIELD_NUMBER: _ClassVar[int]
    resiliency: bytes
    def __init__(self, resiliency: _Optional[bytes] = ...) -> None: ...

class ListResiliencyRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class ListResiliencyResponse(_message.Message):
    __slots__ = ("resiliencies",)
    RESILIENCIES_FIELD_NUMBER: _ClassVar[int]
    resiliencies: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, resiliencies: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ResiliencyUpdateRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class ResiliencyUpdateEvent(_message.Message):
    __slots__ = ("resiliency", "type")
    RESILIENCY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    resiliency: bytes
    type: ResourceEventType
    def __init__(self, resiliency: _Optional[bytes] = ..., type: _Optional[_Union[ResourceEventType, str]] = ...) -> None: ...

class ListHTTPEndpointsRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class ListHTTPEndpointsResponse(_message.Message):
    __slots__ = ("http_endpoints",)
    HTTP_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    http_endpoints: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, http_endpoints: _Optional[_Iterable[bytes]] = ...) -> None: ...

class HTTPEndpointUpdateRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class HTTPEndpointUpdateEvent(_message.Message):
    __slots__ = ("http_endpoints", "type")
    HTTP_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    http_endpoints: bytes
    type: ResourceEventType
    def __init__(self, http_endpoints: _Optional[bytes] = ..., type: _Optional[_Union[ResourceEventType, str]] = ...) -> None: ...

class ListMCPServersRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class ListMCPServersResponse(_message.Message):
    __slots__ = ("mcp_servers",)
    MCP_SERVERS_FIELD_NUMBER: _ClassVar[int]
    mcp_servers: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, mcp_servers: _Optional[_Iterable[bytes]] = ...) -> None: ...

class MCPServerUpdateRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class MCPServerUpdateEvent(_message.Message):
    __slots__ = ("mcp_server", "type")
    MCP_SERVER_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    mcp_server: bytes
    type: ResourceEventType
    def __init__(self, mcp_server: _Optional[bytes] = ..., type: _Optional[_Union[ResourceEventType, str]] = ...) -> None: ...

class ListWorkflowAccessPolicyRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class ListWorkflowAccessPolicyResponse(_message.Message):
    __slots__ = ("policies",)
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, policies: _Optional[_Iterable[bytes]] = ...) -> None: ...

class WorkflowAccessPolicyUpdateRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class WorkflowAccessPolicyUpdateEvent(_message.Message):
    __slots__ = ("policy", "type")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    policy: bytes
    type: ResourceEventType
    def __init__(self, policy: _Optional[bytes] = ..., type: _Optional[_Union[ResourceEventType, str]] = ...) -> None: ...
