"""``dapr.proto.operator.v1.Operator``: what sidecars ask the operator, answered from the caches.

Every RPC first identifies the caller by the SPIFFE ID of its client certificate (verified by
the mTLS front) and refuses a namespace other than the caller's own. Payloads are the resources'
JSON in the shapes daprd's Go structs produce, with ``secretKeyRef`` values filled in from the
Secrets as they are now. Lists and Gets carry ``kind``/``apiVersion``; stream events carry the
object as the watch delivered it, without them (see :mod:`.payloads`).

Requests arrive as raw bytes and are decoded here, so an undecodable one gets grpc-go's own
INTERNAL status instead of an error from inside gRPC's Python layer.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from daprplane._proto.operator.v1 import operator_pb2 as pb
from daprplane.core import grpc_decoding
from daprplane.core.security import authz
from daprplane.core.security.spiffe import SpiffeId
from daprplane.plugins.operator import payloads
from daprplane.plugins.operator.caches import KindCache
from daprplane.plugins.operator.dapr_service import is_truthy
from daprplane.plugins.operator.kinds import ResourceKind
from daprplane.plugins.operator.secrets import SecretError, SecretLookup
from daprplane.plugins.operator.streams import MAX_PENDING, EventHub, Watcher, in_scope

SERVICE = "dapr.proto.operator.v1.Operator"

log = logging.getLogger("dapr.operator.api")

Resolver = Callable[[Mapping[str, Any], str, SecretLookup], Awaitable[dict[str, Any]]]


class ApiError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ServedKind:
    """A kind as the API serves it: its cache, its streams and its secret resolution."""

    kind: ResourceKind
    cache: KindCache
    hub: EventHub
    resolve: Resolver | None = None


@dataclass(frozen=True)
class ListRpc:
    request: type[Message]
    plural: str
    response: type[Message]
    #: The response's repeated field.
    field: str


@dataclass(frozen=True)
class StreamRpc:
    request: type[Message]
    plural: str
    event: type[Message]
    #: The event's payload field.
    field: str
    #: Only the configuration the caller's pod names (ConfigurationUpdate).
    assigned: bool = False


UNSCOPED_LISTS = {
    "ListSubscriptionsV2": ListRpc(
        pb.ListSubscriptionsRequest, "subscriptions", pb.ListSubscriptionsResponse, "subscriptions"
    ),
    "ListResiliency": ListRpc(
        pb.ListResiliencyRequest, "resiliencies", pb.ListResiliencyResponse, "resiliencies"
    ),
    "ListHTTPEndpoints": ListRpc(
        pb.ListHTTPEndpointsRequest, "httpendpoints", pb.ListHTTPEndpointsResponse, "http_endpoints"
    ),
    "ListMCPServers": ListRpc(
        pb.ListMCPServersRequest, "mcpservers", pb.ListMCPServersResponse, "mcp_servers"
    ),
    "ListWorkflowAccessPolicy": ListRpc(
        pb.ListWorkflowAccessPolicyRequest,
        "workflowaccesspolicies",
        pb.ListWorkflowAccessPolicyResponse,
        "policies",
    ),
}
STREAMS = {
    "ComponentUpdate": StreamRpc(
        pb.ComponentUpdateRequest, "components", pb.ComponentUpdateEvent, "component"
    ),
    "ConfigurationUpdate": StreamRpc(
        pb.ConfigurationUpdateRequest,
        "configurations",
        pb.ConfigurationUpdateEvent,
        "configuration",
        assigned=True,
    ),
    "SubscriptionUpdate": StreamRpc(
        pb.SubscriptionUpdateRequest, "subscriptions", pb.SubscriptionUpdateEvent, "subscription"
    ),
    "ResiliencyUpdate": StreamRpc(
        pb.ResiliencyUpdateRequest, "resiliencies", pb.ResiliencyUpdateEvent, "resiliency"
    ),
    "HTTPEndpointUpdate": StreamRpc(
        pb.HTTPEndpointUpdateRequest, "httpendpoints", pb.HTTPEndpointUpdateEvent, "http_endpoints"
    ),
    "MCPServerUpdate": StreamRpc(
        pb.MCPServerUpdateRequest, "mcpservers", pb.MCPServerUpdateEvent, "mcp_server"
    ),
    "WorkflowAccessPolicyUpdate": StreamRpc(
        pb.WorkflowAccessPolicyUpdateRequest,
        "workflowaccesspolicies",
        pb.WorkflowAccessPolicyUpdateEvent,
        "policy",
    ),
}


def _decode(message_type: type[Message], data: bytes) -> Any:
    try:
        return grpc_decoding.decode(message_type, data)
    except grpc_decoding.UndecodableRequest as error:
        raise ApiError(error.code, error.details()) from None


def caller_identity(context: Any) -> SpiffeId:
    try:
        return authz.peer_id(context)
    except authz.PeerAuthError:
        raise ApiError(grpc.StatusCode.PERMISSION_DENIED, "failed to determine identity") from None


def authorize(context: Any, namespace: str) -> SpiffeId:
    """The caller, if it asks for its own namespace."""
    identity = caller_identity(context)
    if not namespace or namespace != identity.namespace:
        raise ApiError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"identity does not match requested namespace exp={namespace} got={identity.namespace}",
        )
    return identity


def assigned_configuration(pods: KindCache, namespace: str, app_id: str) -> str:
    """The ``dapr.io/config`` of the first Dapr pod of ``app_id`` that names one, else ""."""
    for pod in pods.in_namespace(namespace):
        metadata = pod.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        if not is_truthy(annotations.get("dapr.io/enabled")):
            continue
        pod_app = annotations.get("dapr.io/app-id") or metadata.get("name")
        config = annotations.get("dapr.io/config") or ""
        if pod_app == app_id and config:
            return str(config)
    return ""


class OperatorApi:
    def __init__(
        self,
        served: Mapping[str, ServedKind],
        pods: KindCache,
        lookup: SecretLookup,
        open_streams: Any = None,
    ) -> None:
        self.served = served
        self.pods = pods
        self.lookup = lookup
        #: A Prometheus gauge labelled by kind, or None.
        self.open_streams = open_streams

    # -- payloads --------------------------------------------------------------------------------

    async def _resolved(self, resolve: Resolver | None, obj: Mapping[str, Any]) -> dict[str, Any]:
        if resolve is None:
            return dict(obj)
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        return await resolve(obj, namespace, self.lookup)

    async def list_payload(self, served: ServedKind, obj: Mapping[str, Any]) -> bytes:
        """An object as Lists and Gets answer it; a secret that cannot be resolved fails the
        whole call (status Unknown), as in Dapr."""
        kind = served.kind
        try:
            resolved = await self._resolved(served.resolve, obj)
        except SecretError as error:
            metadata = obj.get("metadata") or {}
            raise ApiError(
                grpc.StatusCode.UNKNOWN,
                f"error processing {kind.kind} {metadata.get('namespace')}/{metadata.get('name')}"
                f" secrets: {error}",
            ) from None
        shaped = payloads.go_shape(kind.kind, resolved)
        return payloads.encode(payloads.with_type_meta(shaped, kind.api_version, kind.kind))

    def stream_encoder(
        self, kind: ResourceKind, resolve: Resolver | None
    ) -> Callable[[dict[str, Any]], Awaitable[bytes]]:
        async def encode(obj: dict[str, Any]) -> bytes:
            shaped = payloads.go_shape(kind.kind, await self._resolved(resolve, obj))
            return payloads.encode(payloads.strip_type_meta(shaped))

        return encode

    async def _list(self, plural: str, namespace: str, app_id: str | None = None) -> list[bytes]:
        served = self.served[plural]
        items = []
        for obj in served.cache.in_namespace(namespace):
            if app_id is not None and not in_scope(obj, app_id):
                continue
            items.append(await self.list_payload(served, obj))
        return items

    async def _get(self, plural: str, namespace: str, name: str) -> bytes:
        served = self.served[plural]
        obj = served.cache.get(namespace, name)
        if obj is None:
            raise ApiError(
                grpc.StatusCode.UNKNOWN,
                f"error getting {served.kind.kind.lower()} {namespace}/{name}: "
                f'{served.kind.crd_name} "{name}" not found',
            )
        return await self.list_payload(served, obj)

    # -- unary RPCs ------------------------------------------------------------------------------

    async def list_components(self, request: Any, context: Any) -> Message:
        identity = authorize(context, request.namespace)
        items = await self._list("components", request.namespace, identity.app_id)
        return pb.ListComponentResponse(components=items)

    async def get_configuration(self, request: Any, context: Any) -> Message:
        authorize(context, request.namespace)
        data = await self._get("configurations", request.namespace, request.name)
        return pb.GetConfigurationResponse(configuration=data)

    async def list_subscriptions(self, request: Any, context: Any) -> Message:
        # The legacy RPC carries no namespace, so the namespace check always refuses it.
        authorize(context, "")
        return pb.ListSubscriptionsResponse()  # pragma: no cover - authorize raised

    async def get_resiliency(self, request: Any, context: Any) -> Message:
        authorize(context, request.namespace)
        data = await self._get("resiliencies", request.namespace, request.name)
        return pb.GetResiliencyResponse(resiliency=data)

    async def list_unscoped(self, rpc: ListRpc, request: Any, context: Any) -> Message:
        """The Lists other than ListComponents: every object of the namespace, no scopes."""
        authorize(context, request.namespace)
        items = await self._list(rpc.plural, request.namespace)
        return rpc.response(**{rpc.field: items})

    # -- streams ---------------------------------------------------------------------------------

    async def stream(self, rpc: StreamRpc, request: Any, context: Any) -> None:
        """One update stream, open until the client leaves or the operator stops."""
        identity = authorize(context, request.namespace)
        served = self.served[rpc.plural]

        def frame(data: bytes, event_type: int) -> bytes:
            message = rpc.event(**{rpc.field: data, "type": event_type})
            return bytes(message.SerializeToString())

        accept: Callable[[Mapping[str, Any]], bool] | None = None
        if rpc.assigned:
            # Resolved once, at stream start, as Dapr does.
            name = assigned_configuration(self.pods, request.namespace, identity.app_id)
            accept = functools.partial(_is_named, name)

        watcher = Watcher(request.namespace, identity.app_id, accept)
        served.hub.subscribe(watcher)
        log.debug("Sidecar %s connected for %s updates", identity, served.kind.kind)
        gauge = self.open_streams.labels(served.kind.kind) if self.open_streams else None
        if gauge is not None:
            gauge.inc()
        try:
            while (item := await watcher.next()) is not None:
                event_type, payload = item
                try:
                    message = payload.framed(event_type) or await payload.event(event_type, frame)
                except SecretError as error:
                    log.error("%s stream of %s ended: %s", served.kind.kind, identity, error)
                    return
                await context.write(message)
            if watcher.overflowed:
                log.warning(
                    "%s stream of %s ended: it fell %d events behind",
                    served.kind.kind, identity, MAX_PENDING,
                )  # fmt: skip
        finally:
            served.hub.unsubscribe(watcher)
            if gauge is not None:
                gauge.dec()

    # -- wiring ----------------------------------------------------------------------------------

    def handler(self) -> grpc.GenericRpcHandler:
        unary: dict[str, tuple[type[Message], Callable[[Any, Any], Awaitable[Message]]]] = {
            "ListComponents": (pb.ListComponentsRequest, self.list_components),
            "GetConfiguration": (pb.GetConfigurationRequest, self.get_configuration),
            "ListSubscriptions": (empty_pb2.Empty, self.list_subscriptions),
            "GetResiliency": (pb.GetResiliencyRequest, self.get_resiliency),
        }
        for name, rpc in UNSCOPED_LISTS.items():
            unary[name] = (rpc.request, functools.partial(self.list_unscoped, rpc))
        handlers: dict[str, grpc.RpcMethodHandler] = {}
        for name, (request_type, method) in unary.items():
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                _unary(request_type, method), response_serializer=_serialize
            )
        for name, stream_rpc in STREAMS.items():
            # Stream messages are written already serialized (see SharedPayload.event).
            method = functools.partial(self.stream, stream_rpc)
            handlers[name] = grpc.unary_stream_rpc_method_handler(
                _streaming(stream_rpc.request, method)
            )
        return grpc.method_handlers_generic_handler(SERVICE, handlers)


def _is_named(name: str, obj: Mapping[str, Any]) -> bool:
    return bool(name) and (obj.get("metadata") or {}).get("name") == name


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _unary(
    request_type: type[Message], method: Callable[[Any, Any], Awaitable[Message]]
) -> Callable[[bytes, Any], Awaitable[Message | None]]:
    async def handle(data: bytes, context: Any) -> Message | None:
        try:
            return await method(_decode(request_type, data), context)
        except ApiError as error:
            await context.abort(error.code, error.message)
        return None  # pragma: no cover - abort raises

    return handle


def _streaming(
    request_type: type[Message], method: Callable[[Any, Any], Awaitable[None]]
) -> Callable[[bytes, Any], Awaitable[None]]:
    async def handle(data: bytes, context: Any) -> None:
        try:
            await method(_decode(request_type, data), context)
        except ApiError as error:
            await context.abort(error.code, error.message)

    return handle
