"""Keeping the webhook configuration's ``caBundle`` equal to the trust anchors (contract §5).

The API server verifies the webhook's serving certificate (issued by Sentry) against the
``caBundle`` of ``mutatingwebhookconfigurations/dapr-sidecar-injector``. The injector writes the
trust-anchor PEM there once its identity is ready and again after every anchor change, with the
same JSON patch as Dapr: only ``/webhooks/0`` is replaced, because Dapr's ClusterRole grants
``patch`` on that one object and nothing else (not even ``get``, which patching every webhook
would need to count them). A failed patch stops the process (exit 1), as in Dapr.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

from daprplane.core.health import Target
from daprplane.core.kube.client import KubeApiError, path_of, request
from daprplane.core.security.anchors import TrustAnchorSource, TrustBundle

WEBHOOK_CONFIGURATION = "dapr-sidecar-injector"
PATH = path_of(
    "apis", "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
    WEBHOOK_CONFIGURATION,
)  # fmt: skip
PATCH_TIMEOUT = 30.0

log = logging.getLogger("dapr.injector")


class CaBundleError(RuntimeError):
    """The webhook configuration could not be patched."""


def patch_body(pem: bytes) -> list[dict[str, Any]]:
    value = base64.b64encode(pem).decode()
    return [{"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": value}]


async def patch_ca_bundle(api: Any, pem: bytes) -> None:
    try:
        await request(
            api,
            "PATCH",
            PATH,
            body=patch_body(pem),
            content_type="application/json-patch+json",
            timeout=PATCH_TIMEOUT,
        )
    except KubeApiError as error:
        raise CaBundleError(
            f"failed to patch webhook configuration {WEBHOOK_CONFIGURATION}: {error.message}"
        ) from None
    except (TimeoutError, OSError) as error:
        raise CaBundleError(
            f"failed to patch webhook configuration {WEBHOOK_CONFIGURATION}: "
            f"{type(error).__name__}: {error}"
        ) from None


class CaBundleSync:
    """Patches at :meth:`run` start and after every anchor change; returns only by raising."""

    def __init__(self, api: Any, anchors: TrustAnchorSource, target: Target | None = None) -> None:
        self.api = api
        self.anchors = anchors
        self.target = target
        self._changed = asyncio.Event()
        self.patched: bytes | None = None

    def _on_change(self, _: TrustBundle) -> None:
        self._changed.set()

    async def run(self) -> None:
        unsubscribe = self.anchors.subscribe(self._on_change)
        try:
            while True:
                self._changed.clear()
                pem = self.anchors.current.pem
                if pem != self.patched:
                    await patch_ca_bundle(self.api, pem)
                    self.patched = pem
                    log.info("Patched webhook configuration %s caBundle", WEBHOOK_CONFIGURATION)
                    if self.target is not None:
                        self.target.ready()
                await self._changed.wait()
        finally:
            unsubscribe()
