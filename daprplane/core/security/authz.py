"""Who may call: the caller's SPIFFE ID, taken from its verified client certificate.

A gRPC servicer gets the peer's leaf from ``context.auth_context()["x509_pem_cert"]`` when gRPC
terminated TLS, or from the :class:`~daprplane.core.security.front.MtlsFront` that terminated it
and relayed the connection, which records it in a :class:`RelayedPeers`. Dapr peers must carry
exactly one URI SAN with a Dapr path ``/ns/<namespace>/<app-id>``; anything else is
unauthenticated. What an identified peer may do is then an :data:`Authorizer`'s decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import grpc
from cryptography import x509

from daprplane.core.security import spiffe
from daprplane.core.security.spiffe import SpiffeId
from daprplane.core.security.svid import SvidError, verify_leaf

#: Raises :class:`PermissionDeniedError` for a peer it does not accept.
Authorizer = Callable[[SpiffeId], None]


class PeerAuthError(Exception):
    code = grpc.StatusCode.UNAUTHENTICATED


class UnauthenticatedError(PeerAuthError):
    """No usable SPIFFE identity: no client certificate, or not a Dapr X.509-SVID."""


class PermissionDeniedError(PeerAuthError):
    code = grpc.StatusCode.PERMISSION_DENIED


class RelayedPeers:
    """The client certificates of the connections one TLS front relays to its gRPC server.

    Each relayed connection reaches the server from its own socket, whose gRPC peer string is
    the key. The front that verified the certificates owns this map; the servicers behind it
    pass it to :func:`peer_id` (or :func:`authorize`), so two fronts never see each other's
    peers.
    """

    def __init__(self) -> None:
        self._certificates: dict[str, x509.Certificate] = {}

    def add(self, grpc_peer: str, certificate: x509.Certificate) -> None:
        self._certificates[grpc_peer] = certificate

    def discard(self, grpc_peer: str) -> None:
        self._certificates.pop(grpc_peer, None)

    def get(self, grpc_peer: str) -> x509.Certificate | None:
        return self._certificates.get(grpc_peer)

    def __len__(self) -> int:
        return len(self._certificates)


#: Where :func:`register_relayed_peer` records peers, for fronts that do not own a map yet; a
#: lookup without a map of its own falls back to it.
UNOWNED = RelayedPeers()


def register_relayed_peer(grpc_peer: str, certificate: x509.Certificate) -> None:
    """Record a relayed peer in :data:`UNOWNED`; a front that owns a :class:`RelayedPeers`
    adds to that instead."""
    UNOWNED.add(grpc_peer, certificate)


def unregister_relayed_peer(grpc_peer: str) -> None:
    UNOWNED.discard(grpc_peer)


def peer_certificate(context: Any, relayed: RelayedPeers | None = None) -> x509.Certificate:
    """The verified client leaf of a ``grpc.aio.ServicerContext`` (or a sync one): the one a
    TLS front recorded in ``relayed`` for this connection, else the one gRPC verified."""
    certificate = (UNOWNED if relayed is None else relayed).get(context.peer())
    if certificate is not None:
        return certificate
    pems = (context.auth_context() or {}).get("x509_pem_cert") or []
    if not pems:
        raise UnauthenticatedError("peer presented no client certificate")
    try:
        return x509.load_pem_x509_certificate(pems[0])
    except (ValueError, x509.InvalidVersion) as error:
        raise UnauthenticatedError(f"failed to parse peer certificate: {error}") from None


def dapr_id(spiffe_id: SpiffeId) -> SpiffeId:
    """``spiffe_id`` if its path is exactly ``/ns/<namespace>/<app-id>``."""
    parts = spiffe_id.path.split("/")
    if len(parts) != 4 or parts[1] != "ns" or not parts[2] or not parts[3]:
        raise UnauthenticatedError(f"malformed SPIFFE ID: {spiffe_id}")
    return spiffe_id


def peer_id(context: Any, relayed: RelayedPeers | None = None) -> SpiffeId:
    """The caller's Dapr SPIFFE ID, or :class:`UnauthenticatedError` saying why there is none.
    ``relayed``: the peers of the TLS front the server listens behind, if it does."""
    try:
        return dapr_id(verify_leaf(peer_certificate(context, relayed)))
    except SvidError as error:
        raise UnauthenticatedError(str(error)) from None


async def authorize(
    context: Any, authorizer: Authorizer | None = None, relayed: RelayedPeers | None = None
) -> SpiffeId:
    """:func:`peer_id` checked by ``authorizer``; on failure the call is aborted with
    UNAUTHENTICATED or PERMISSION_DENIED and the reason (``context.abort`` raises)."""
    try:
        identity = peer_id(context, relayed)
        if authorizer is not None:
            authorizer(identity)
        return identity
    except PeerAuthError as error:
        await context.abort(error.code, str(error))
        raise  # unreachable: abort raises


def _deny(message: str) -> NoReturn:
    raise PermissionDeniedError(message)


def allow_any(_: SpiffeId) -> None:
    """Any identity whose chain verified (Dapr's ``AuthorizeAny``)."""


def allow_ids(*ids: SpiffeId | str) -> Authorizer:
    """Exactly these SPIFFE IDs (case-sensitive, as go-spiffe compares)."""
    allowed = frozenset(spiffe.parse(i) if isinstance(i, str) else i for i in ids)

    def check(identity: SpiffeId) -> None:
        if identity not in allowed:
            _deny(f"unexpected ID {identity!s}")

    return check


def allow_trust_domains(trust_domains: Iterable[str]) -> Authorizer:
    allowed = frozenset(trust_domains)

    def check(identity: SpiffeId) -> None:
        if identity.trust_domain not in allowed:
            _deny(f"unexpected trust domain {identity.trust_domain!r} of {identity!s}")

    return check


def allow_namespace(namespace: str) -> Authorizer:
    """Any app in ``namespace``, in any trust domain."""

    def check(identity: SpiffeId) -> None:
        if identity.namespace != namespace:
            _deny(f"unexpected namespace {identity.namespace!r} of {identity!s}")

    return check
