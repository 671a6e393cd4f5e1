"""Requests that do not decode, answered the way grpc-go answers them.

grpc.aio runs a method handler's request deserializer before the servicer sees anything, and a
deserializer that raises ends the RPC with ``UNKNOWN`` and the name of a Python exception class,
which no Go client expects. grpc-go ends such an RPC with ``INTERNAL`` and its own wording. So
our handlers take requests as raw bytes (no deserializer) and decode them here, where the status
is ours to choose. Every component's servicers share this one place for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

#: grpc-go's details for the request of a unary RPC (or of a server stream) it cannot unmarshal.
UNARY_DETAILS = "grpc: error unmarshalling request: "
#: grpc-go's details for a message read from a stream that does not unmarshal.
STREAM_DETAILS = "grpc: failed to unmarshal the received message: "

MessageT = TypeVar("MessageT", bound=Message)


class UndecodableRequest(Exception):
    """Bytes that are not the expected message; ``reason`` is the decoder's explanation."""

    code = grpc.StatusCode.INTERNAL

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def details(self, prefix: str = UNARY_DETAILS) -> str:
        return prefix + self.reason


def decode(message_type: type[MessageT], data: bytes) -> MessageT:
    """``message_type`` parsed from ``data``; raises :class:`UndecodableRequest`."""
    try:
        message: MessageT = message_type.FromString(data)
    except (DecodeError, ValueError) as error:
        raise UndecodableRequest(str(error)) from None
    return message


def unary_unary(
    behavior: Callable[[MessageT, grpc.aio.ServicerContext], Awaitable[Any]],
    request_type: type[MessageT],
    response_serializer: Callable[[Any], bytes] | None = None,
) -> grpc.RpcMethodHandler:
    """A unary-unary method handler that decodes its own request: bytes that are not a
    ``request_type`` end the RPC with ``INTERNAL`` "grpc: error unmarshalling request: ..."
    and never reach ``behavior``."""

    async def handle(data: bytes, context: grpc.aio.ServicerContext) -> Any:
        try:
            request = decode(request_type, data)
        except UndecodableRequest as error:
            await context.abort(error.code, error.details())
            raise  # abort always raises; this keeps the flow plain to readers and checkers
        return await behavior(request, context)

    return grpc.unary_unary_rpc_method_handler(handle, response_serializer=response_serializer)
