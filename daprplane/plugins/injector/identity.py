"""The webhook's serving identity: an RSA SVID from Sentry, served without restarts on renewal.

Dapr's injector asks Sentry for ``dapr-injector`` in the control-plane namespace, which Sentry
answers with the DNS name ``dapr-sidecar-injector.<namespace>.svc`` besides the SPIFFE URI: the
name the API server checks when it calls the webhook Service. The key is RSA because some managed
API servers refuse Ed25519 webhook certificates. The same trust-anchor file that verifies Sentry
feeds the sidecars' ``DAPR_TRUST_ANCHORS`` and the webhook ``caBundle``.
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

APP_ID = "dapr-injector"


@dataclass(frozen=True)
class IdentitySettings:
    trust_anchors_file: str
    sentry_address: str
    #: The control-plane namespace (``$NAMESPACE``) and trust domain.
    namespace: str
    trust_domain: str


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


async def start_identity(
    settings: IdentitySettings,
    anchors: TrustAnchorsFile,
    stack: contextlib.AsyncExitStack,
    target: Target | None = None,
) -> Identity:
    """Fetch the first SVID (retrying until Sentry answers) and keep renewing it."""
    if not settings.sentry_address:
        raise FatalError(
            "DAPR_SENTRY_ADDRESS is not set: the injector needs sentry for its identity"
        )
    sentry = SentryClient(
        address=settings.sentry_address,
        anchors=anchors,
        app_id=APP_ID,
        namespace=settings.namespace,
        control_plane_trust_domain=settings.trust_domain,
        control_plane_namespace=settings.namespace,
        kubernetes_mode=True,
        key_algorithm=KeyAlgorithm.RSA,
    )
    svid = SvidSource(sentry.sign, target=target)
    await svid.start()
    stack.push_async_callback(svid.aclose)
    tls = LiveServerContext(svid)
    stack.callback(tls.close)
    return Identity(anchors, svid, tls)
