"""``ssl.SSLContext`` objects built from an SVID and trust anchors (OpenSSL, not gRPC's TLS).

Peer verification is SPIFFE's: the chain must verify to the trust anchors, and the peer is named
by the URI SAN of its leaf, never by a DNS name, so hostname checking is off and the caller
authorises :func:`peer_id` instead. Python's ``ssl`` is used because it verifies Ed25519
handshake signatures (daprd's keys), which gRPC's bundled BoringSSL does not offer (grpc#24252).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from daprplane.core.security.anchors import TrustBundle
from daprplane.core.security.spiffe import SpiffeId
from daprplane.core.security.svid import Svid, SvidError, verify_leaf

ALPN_H2 = "h2"


def load_svid(context: ssl.SSLContext, svid: Svid) -> None:
    """``load_cert_chain`` from memory. It only takes paths, so the PEM goes through an anonymous
    memory file (no key on disk) where Linux has one, else a private temporary file."""
    data = svid.chain_pem + svid.private_key_pem
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("svid", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as directory:  # created 0700
        path = Path(directory) / "svid.pem"
        path.write_bytes(data)
        context.load_cert_chain(str(path))


def _base(purpose: int) -> ssl.SSLContext:
    context = ssl.SSLContext(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols([ALPN_H2])
    return context


def client_context(anchors: TrustBundle, svid: Svid | None = None) -> ssl.SSLContext:
    """Verifies the server chain to ``anchors``; presents ``svid`` when given (mTLS)."""
    context = _base(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the peer is authorised by SPIFFE ID instead
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=anchors.pem.decode("ascii"))
    if svid is not None:
        load_svid(context, svid)
    return context


def server_context(svid: Svid, client_anchors: TrustBundle | None = None) -> ssl.SSLContext:
    """Presents ``svid``; with ``client_anchors``, requires a client chain verifying to them."""
    context = _base(ssl.PROTOCOL_TLS_SERVER)
    load_svid(context, svid)
    if client_anchors is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_anchors.pem.decode("ascii"))
    return context


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> x509.Certificate:
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        raise SvidError("peer presented no certificate")
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion) as error:
        raise SvidError(f"failed to parse peer certificate: {error}") from None


def peer_id(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> SpiffeId:
    """The verified peer's SPIFFE ID, by the X.509-SVID leaf rules."""
    return verify_leaf(peer_certificate(ssl_object))


class ContextCache:
    """One context per (anchors, SVID) pair, rebuilt only when either changes."""

    def __init__(self, build: Callable[..., ssl.SSLContext]) -> None:
        self._build = build
        self._key: tuple[object, ...] | None = None
        self._context: ssl.SSLContext | None = None

    def get(self, *key: object) -> ssl.SSLContext:
        if (
            self._context is None
            or self._key is None
            or any(a is not b for a, b in zip(self._key, key, strict=True))
        ):
            self._context = self._build(*key)
            self._key = key
        return self._context
