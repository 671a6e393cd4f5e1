"""A control-plane service's identity at start: the trust anchors, then an SVID from Sentry.

The injector and the operator both serve HTTPS to the API server (webhooks) with their SVID, so
both ask for an RSA key: some managed API servers refuse Ed25519 serving certificates. Sentry
adds the webhook Service's DNS name to the control-plane IDs it knows (``dapr-injector``,
``dapr-operator``). The first SVID is retried until Sentry answers; renewal then runs in the
background and the returned TLS context always presents the current certificate.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from daprplane.core.health import Target
from daprplane.core.runtime import FatalError
from daprplane.core.security.anchors import TrustAnchorsError, TrustAnchorsFile
from daprplane.core.security.credentials import LiveServerContext
from daprplane.core.security.csr import KeyAlgorithm
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.sentry_client import SentryClient


@dataclass(frozen=True)
class IdentitySettings:
    app_id: str
    sentry_address: str
    #: The control-plane namespace (``$NAMESPACE``) and trust domain.
    namespace: str
    trust_domain: str
    key_algorithm: KeyAlgorithm = KeyAlgorithm.RSA
    #: Whether the process asks as a pod does (its sentry token), or as a standalone process.
    kubernetes_mode: bool = True


@dataclass
class Identity:
    anchors: TrustAnchorsFile
    svid: SvidSource
    tls: LiveServerContext


async def open_anchors(path: str, stack: contextlib.AsyncExitStack) -> TrustAnchorsFile:
    """The trust-anchor file, waited for until it exists (and closed with ``stack``)."""
    anchors = TrustAnchorsFile(path)
    try:
        await anchors.start()
    except TrustAnchorsError as error:
        raise FatalError(str(error)) from None
    stack.push_async_callback(anchors.aclose)
    return anchors


async def start_svid(
    settings: IdentitySettings,
    anchors: TrustAnchorsFile,
    stack: contextlib.AsyncExitStack,
    target: Target | None = None,
) -> SvidSource:
    """The first SVID (retried until Sentry answers), renewed in the background until ``stack``
    closes."""
    sentry = SentryClient(
        address=settings.sentry_address,
        anchors=anchors,
        app_id=settings.app_id,
        namespace=settings.namespace,
        control_plane_trust_domain=settings.trust_domain,
        control_plane_namespace=settings.namespace,
        kubernetes_mode=settings.kubernetes_mode,
        key_algorithm=settings.key_algorithm,
    )
    svid = SvidSource(sentry.sign, target=target)
    await svid.start()
    stack.push_async_callback(svid.aclose)
    return svid


async def start_identity(
    settings: IdentitySettings,
    anchors: TrustAnchorsFile,
    stack: contextlib.AsyncExitStack,
    target: Target | None = None,
) -> Identity:
    """:func:`start_svid`, and a TLS server context that always presents the current SVID."""
    svid = await start_svid(settings, anchors, stack, target)
    tls = LiveServerContext(svid)
    stack.callback(tls.close)
    return Identity(anchors, svid, tls)
