"""Pointing the Subscription CRD's conversion webhook at this operator (contract §5.1).

The chart installs ``subscriptions.dapr.io`` with a conversion webhook whose service namespace is
the placeholder ``replaceme`` and with no ``caBundle``: only the running operator knows its
namespace and the trust anchors that its serving certificate (issued by Sentry) chains to. It
writes both at start and again whenever the anchors change, so the API server can reach
``dapr-webhook.<namespace>.svc`` and verify it. The CRD is read uncached and left alone when it
is already right, so replicas that start together do not keep rewriting it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from daprplane.core.health import Target
from daprplane.core.kube.client import KubeApiError, path_of, request
from daprplane.core.security.anchors import TrustAnchorSource, TrustBundle

SUBSCRIPTIONS_CRD = "subscriptions.dapr.io"
CLIENT_CONFIG = "/spec/conversion/webhook/clientConfig"
REQUEST_TIMEOUT = 30.0
#: Retry delays after a failed re-patch: doubled each time from the first, up to the last.
RETRY_INITIAL = 1.0
RETRY_MAX = 30.0

log = logging.getLogger("dapr.operator")


class ConversionPatchError(RuntimeError):
    """The CRD's conversion webhook could not be read or patched."""


def crd_path(crd_name: str) -> str:
    return path_of("apis", "apiextensions.k8s.io", "v1", "customresourcedefinitions", crd_name)


def _client_config(crd: Any, crd_name: str) -> Mapping[str, Any]:
    node = crd
    for key in ("spec", "conversion", "webhook", "clientConfig"):
        node = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        raise ConversionPatchError(
            f"CRD {crd_name} has no conversion webhook: "
            "spec.conversion.webhook.clientConfig is not set"
        )
    if not isinstance(node.get("service"), Mapping):
        raise ConversionPatchError(
            f"CRD {crd_name}: the conversion webhook clientConfig names no service "
            "(spec.conversion.webhook.clientConfig.service)"
        )
    return node


def _decoded_ca_bundle(client_config: Mapping[str, Any]) -> bytes | None:
    value = client_config.get("caBundle")
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def patch_body(namespace: str, pem: bytes) -> list[dict[str, Any]]:
    """The JSON patch writing ``namespace`` and ``pem`` into the conversion clientConfig."""
    # Dapr's patch, byte for byte. "replace" of the caBundle that the chart's CRD lacks is
    # accepted: the API server's JSON patch treats it as "add" for a missing object member.
    return [
        {"op": "replace", "path": f"{CLIENT_CONFIG}/service/namespace", "value": namespace},
        {
            "op": "replace",
            "path": f"{CLIENT_CONFIG}/caBundle",
            "value": base64.b64encode(pem).decode(),
        },
    ]


async def _call(api: Any, method: str, crd_name: str, what: str, **kwargs: Any) -> Any:
    try:
        return await request(api, method, crd_path(crd_name), timeout=REQUEST_TIMEOUT, **kwargs)
    except KubeApiError as error:
        raise ConversionPatchError(f"failed to {what} CRD {crd_name}: {error.message}") from None
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        raise ConversionPatchError(
            f"failed to {what} CRD {crd_name}: {type(error).__name__}: {error}"
        ) from None


async def patch_conversion_webhook(
    api: Any, namespace: str, anchors_pem: bytes, crd_name: str = SUBSCRIPTIONS_CRD
) -> bool:
    """Make the CRD's conversion webhook name ``namespace`` and trust ``anchors_pem``.

    Returns whether the CRD was written (False: it was already right). Raises
    :class:`ConversionPatchError`.
    """
    crd = await _call(api, "GET", crd_name, "get")
    client_config = _client_config(crd, crd_name)
    if (
        client_config["service"].get("namespace") == namespace
        and _decoded_ca_bundle(client_config) == anchors_pem
    ):
        return False
    await _call(
        api,
        "PATCH",
        crd_name,
        "patch",
        body=patch_body(namespace, anchors_pem),
        content_type="application/json-patch+json",
    )
    return True


class ConversionWebhookSync:
    """Patches at :meth:`run` start and after every anchor change; returns only by raising.

    The first patch must succeed (its :class:`ConversionPatchError` ends :meth:`run`); ``target``
    is marked ready after it. Later failures are logged and retried with capped exponential
    backoff, each attempt with the anchors current at that moment.
    """

    def __init__(
        self,
        api: Any,
        namespace: str,
        anchors: TrustAnchorSource,
        target: Target | None = None,
        *,
        crd_name: str = SUBSCRIPTIONS_CRD,
        retry_initial: float = RETRY_INITIAL,
        retry_max: float = RETRY_MAX,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.anchors = anchors
        self.target = target
        self.crd_name = crd_name
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.patches = 0
        self._changed = asyncio.Event()

    def _on_change(self, _: TrustBundle) -> None:
        self._changed.set()

    async def _patch(self) -> None:
        # Cleared before reading the anchors: a change during the call triggers another round.
        self._changed.clear()
        if await patch_conversion_webhook(
            self.api, self.namespace, self.anchors.current.pem, self.crd_name
        ):
            self.patches += 1
            log.info(
                "Patched the conversion webhook of CRD %s (namespace %s, caBundle from the "
                "trust anchors)",
                self.crd_name,
                self.namespace,
            )

    async def _patch_until_done(self) -> None:
        delay = self.retry_initial
        while True:
            try:
                await self._patch()
                return
            except ConversionPatchError as error:
                log.error("%s; retrying in %.1fs", error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)

    async def run(self) -> None:
        unsubscribe = self.anchors.subscribe(self._on_change)
        try:
            await self._patch()
            if self.target is not None:
                self.target.ready()
            while True:
                await self._changed.wait()
                await self._patch_until_done()
        finally:
            unsubscribe()
