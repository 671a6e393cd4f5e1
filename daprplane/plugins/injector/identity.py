"""The webhook's serving identity: an RSA SVID from Sentry, served without restarts on renewal.

Dapr's injector asks Sentry for ``dapr-injector`` in the control-plane namespace, which Sentry
answers with the DNS name ``dapr-sidecar-injector.<namespace>.svc`` besides the SPIFFE URI: the
name the API server checks when it calls the webhook Service. The same trust-anchor file that
verifies Sentry feeds the sidecars' ``DAPR_TRUST_ANCHORS`` and the webhook ``caBundle``.
"""

from __future__ import annotations

import contextlib

from daprplane.core.health import Target
from daprplane.core.runtime import FatalError
from daprplane.core.security import bootstrap
from daprplane.core.security.anchors import TrustAnchorsFile
from daprplane.core.security.bootstrap import Identity, open_anchors

APP_ID = "dapr-injector"

__all__ = ["APP_ID", "Identity", "open_anchors", "start_identity"]


async def start_identity(
    sentry_address: str,
    namespace: str,
    trust_domain: str,
    anchors: TrustAnchorsFile,
    stack: contextlib.AsyncExitStack,
    target: Target | None = None,
) -> Identity:
    if not sentry_address:
        raise FatalError(
            "DAPR_SENTRY_ADDRESS is not set: the injector needs sentry for its identity"
        )
    settings = bootstrap.IdentitySettings(APP_ID, sentry_address, namespace, trust_domain)
    return await bootstrap.start_identity(settings, anchors, stack, target)
