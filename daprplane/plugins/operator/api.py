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

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import DecodeError, Message

from daprplane._proto.operator.v1 import operator_pb2 as pb
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


def _decode(message_type: type[Message], data: bytes) -> Any:
    try:
        return message_type.FromString(data)
    except (DecodeError, ValueError) as error:
        raise ApiError(
            grpc.StatusCode.INTERNAL, f"grpc: error unmarshalling request: {error}"
        ) from None


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
        kind = served.kind
        shaped = payloads.go_shape(kind.kind, await self._resolved(served.resolve, obj))
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
            try:
                items.append(await self.list_payload(served, obj))
            except SecretError as error:
                name = (obj.get("metadata") or {}).get("name")
                raise ApiError(
                    grpc.StatusCode.UNKNOWN,
                    f"error processing {served.kind.kind} {namespace}/{name} secrets: {error}",
                ) from None
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
        try:
            return await self.list_payload(served, obj)
        except SecretError as error:
            raise ApiError(
                grpc.StatusCode.UNKNOWN,
                f"error processing {served.kind.kind} {namespace}/{name} secrets: {error}",
            ) from None

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

    async def list_subscriptions_v2(self, request: Any, context: Any) -> Message:
        authorize(context, request.namespace)
        items = await self._list("subscriptions", request.namespace)
        return pb.ListSubscriptionsResponse(subscriptions=items)

    async def get_resiliency(self, request: Any, context: Any) -> Message:
        authorize(context, request.namespace)
        data = await self._get("resiliencies", request.namespace, request.name)
        return pb.GetResiliencyResponse(resiliency=data)

    async def list_resiliency(self, request: Any, context: Any) -> Message:
        authorize(context, request.namespace)
        items = await self._list("resiliencies", request.namespace)
        return pb.ListResiliencyResponse(resiliencies=items)

    async def list_http_endpoints(self, request: Any, context: Any) -> Message:
        authorize(context, request.namespace)
        items = await self._list("httpendpoints", request.namespace)
        return pb.ListHTTPEndpointsResponse(http_endpoints=items)

    async def list_mcp_servers(self, request: Any, context: Any) -> Message:
        authorize(context, request.namespace)
        items = await self._list("mcpservers", request.namespace)
        return pb.ListMCPServersResponse(mcp_servers=items)

    async def list_workflow_access_policy(self, request: Any, context: Any) -> Message:
        authorize(context, request.namespace)
        items = await self._list("workflowaccesspolicies", request.namespace)
        return pb.ListWorkflowAccessPolicyResponse(policies=items)

    # -- streams ---------------------------------------------------------------------------------

    async def _stream(
        self,
        plural: str,
        request: Any,
        context: Any,
        event: Callable[[bytes, int], Message],
        accept: Callable[[Mapping[str, Any]], bool] | None = None,
        *,
        assigned: bool = False,
    ) -> None:
        identity = authorize(context, request.namespace)
        served = self.served[plural]

        def frame(data: bytes, event_type: int) -> bytes:
            return event(data, event_type).SerializeToString()

        if assigned:
            name = assigned_configuration(self.pods, request.namespace, identity.app_id)

            def accept(obj: Mapping[str, Any]) -> bool:
                return bool(name) and (obj.get("metadata") or {}).get("name") == name

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

    async def component_update(self, request: Any, context: Any) -> None:
        await self._stream(
            "components", request, context,
            lambda data, kind: pb.ComponentUpdateEvent(component=data, type=kind),  # type: ignore[arg-type]
        )  # fmt: skip

    async def configuration_update(self, request: Any, context: Any) -> None:
        await self._stream(
            "configurations", request, context,
            lambda data, kind: pb.ConfigurationUpdateEvent(configuration=data, type=kind),  # type: ignore[arg-type]
            assigned=True,
        )  # fmt: skip

    async def subscription_update(self, request: Any, context: Any) -> None:
        await self._stream(
            "subscriptions", request, context,
            lambda data, kind: pb.SubscriptionUpdateEvent(subscription=data, type=kind),  # type: ignore[arg-type]
        )  # fmt: skip

    async def resiliency_update(self, request: Any, context: Any) -> None:
        await self._stream(
            "resiliencies", request, context,
            lambda data, kind: pb.ResiliencyUpdateEvent(resiliency=data, type=kind),  # type: ignore[arg-type]
        )  # fmt: skip

    async def http_endpoint_update(self, request: Any, context: Any) -> None:
        await self._stream(
            "httpendpoints", request, context,
            lambda data, kind: pb.HTTPEndpointUpdateEvent(http_endpoints=data, type=kind),  # type: ignore[arg-type]
        )  # fmt: skip

    async def mcp_server_update(self, request: Any, context: Any) -> None:
        await self._stream(
            "mcpservers", request, context,
            lambda data, kind: pb.MCPServerUpdateEvent(mcp_server=data, type=kind),  # type: ignore[arg-type]
        )  # fmt: skip

    async def workflow_access_policy_update(self, request: Any, context: Any) -> None:
        await self._stream(
            "workflowaccesspolicies", request, context,
            lambda data, kind: pb.WorkflowAccessPolicyUpdateEvent(policy=data, type=kind),  # type: ignore[arg-type]
        )  # fmt: skip

    # -- wiring ----------------------------------------------------------------------------------

    def handler(self) -> grpc.GenericRpcHandler:
        unary = {
            "ListComponents": (pb.ListComponentsRequest, self.list_components),
            "GetConfiguration": (pb.GetConfigurationRequest, self.get_configuration),
            "ListSubscriptions": (empty_pb2.Empty, self.list_subscriptions),
            "ListSubscriptionsV2": (pb.ListSubscriptionsRequest, self.list_subscriptions_v2),
            "GetResiliency": (pb.GetResiliencyRequest, self.get_resiliency),
            "ListResiliency": (pb.ListResiliencyRequest, self.list_resiliency),
            "ListHTTPEndpoints": (pb.ListHTTPEndpointsRequest, self.list_http_endpoints),
            "ListMCPServers": (pb.ListMCPServersRequest, self.list_mcp_servers),
            "ListWorkflowAccessPolicy": (
                pb.ListWorkflowAccessPolicyRequest,
                self.list_workflow_access_policy,
            ),
        }
        streams = {
            "ComponentUpdate": (pb.ComponentUpdateRequest, self.component_update),
            "ConfigurationUpdate": (pb.ConfigurationUpdateRequest, self.configuration_update),
            "SubscriptionUpdate": (pb.SubscriptionUpdateRequest, self.subscription_update),
            "ResiliencyUpdate": (pb.ResiliencyUpdateRequest, self.resiliency_update),
            "HTTPEndpointUpdate": (pb.HTTPEndpointUpdateRequest, self.http_endpoint_update),
            "MCPServerUpdate": (pb.MCPServerUpdateRequest, self.mcp_server_update),
            "WorkflowAccessPolicyUpdate": (
                pb.WorkflowAccessPolicyUpdateRequest,
                self.workflow_access_policy_update,
            ),
        }
        handlers: dict[str, grpc.RpcMethodHandler] = {}
        for name, (request_type, method) in unary.items():
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                _unary(request_type, method), response_serializer=_serialize
            )
        for name, (request_type, method) in streams.items():
            # Stream messages are written already serialized (see SharedPayload.event).
            handlers[name] = grpc.unary_stream_rpc_method_handler(_streaming(request_type, method))
        return grpc.method_handlers_generic_handler(SERVICE, handlers)


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
