"""Serving credentials that follow SVID rotation without a restart.

* :func:`grpc_server_credentials`: gRPC terminates TLS itself with
  ``grpc.dynamic_ssl_server_credentials``; gRPC asks for the configuration at every handshake, so
  a renewed SVID (or new trust anchors) is served to the next connection. Use it without client
  authentication (Sentry), or with it only for RSA/ECDSA clients: gRPC cannot verify Ed25519
  client certificates, which is what daprd has; :class:`~.front.MtlsFront` serves those.
* :class:`LiveServerContext`: an ``ssl.SSLContext`` for aiohttp (the injector webhook) whose
  certificate is replaced in place on rotation; OpenSSL copies the certificate into each new
  connection, so new handshakes present the new one and open connections are unaffected.
"""

from __future__ import annotations

import ssl

import grpc

from daprplane.core.security import tls
from daprplane.core.security.anchors import TrustAnchorSource, TrustBundle
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.svid import Svid


def _configuration(svid: Svid, anchors: TrustBundle | None) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(svid.private_key_pem, svid.chain_pem)],
        root_certificates=anchors.pem if anchors is not None else None,
    )


def grpc_server_credentials(
    svid: SvidSource,
    anchors: TrustAnchorSource | None = None,
    *,
    require_client_auth: bool = False,
) -> grpc.ServerCredentials:
    """Serve ``svid.current``; with ``require_client_auth``, demand a client chain verifying to
    ``anchors``. ``svid`` must be ready (it has a current SVID)."""
    if require_client_auth and anchors is None:
        raise ValueError("client authentication needs trust anchors")
    client_anchors = anchors if require_client_auth else None

    def snapshot() -> tuple[Svid, TrustBundle | None]:
        return svid.current, client_anchors.current if client_anchors is not None else None

    served = snapshot()

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        # Called by gRPC on its own threads at each handshake: only reads attributes.
        nonlocal served
        current = snapshot()
        if current[0] is served[0] and current[1] is served[1]:
            return None
        served = current
        return _configuration(*current)

    return grpc.dynamic_ssl_server_credentials(
        _configuration(*served), fetch, require_client_authentication=require_client_auth
    )


class LiveServerContext:
    """A server ``ssl.SSLContext`` (TLS >= 1.2, ALPN http/1.1 by default) that always presents
    ``svid.current``. Pass :attr:`context` to ``aiohttp.web.TCPSite(ssl_context=...)``."""

    def __init__(self, svid: SvidSource, *, alpn: tuple[str, ...] = ("http/1.1",)) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.set_alpn_protocols(list(alpn))
        tls.load_svid(self.context, svid.current)
        self._unsubscribe = svid.subscribe(lambda new: tls.load_svid(self.context, new))

    def close(self) -> None:
        self._unsubscribe()
