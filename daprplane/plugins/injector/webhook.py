"""``/mutate``: the admission webhook's HTTP handler (Dapr ``service/handler.go``).

The checks run in Dapr's order, and every call is counted first:

1. body: empty (or unreadable) → HTTP 400 ``empty body``; larger than :data:`MAX_BODY_BYTES`
   → HTTP 413 (Dapr reads any size);
2. ``Content-Type`` exactly ``application/json`` → else HTTP 415;
3. the AdmissionReview decodes → else 200 with ``allowed: false`` and the reason;
4. not a Pod → allowed unchanged; 5. not Dapr-enabled → allowed unchanged (not counted);
6. an unauthorised user → allowed unchanged; 7. the patch → ``allowed`` with it, or ``allowed:
   false`` and the error's message, which makes the API server reject the pod.

Every path past the first two answers 200 with an AdmissionReview. What builds the patch is a
seam (:class:`PatchBuilder`): the service wires in the patcher.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from daprplane.plugins.injector import admission
from daprplane.plugins.injector.admission import AdmissionRequest
from daprplane.plugins.injector.authz import Authorizer
from daprplane.plugins.injector.metrics import InjectorMetrics

#: Largest review body read. The API server sends at most a few MiB (one object, 3 MiB request
#: limit by default); anything bigger is refused with 413 rather than buffered.
MAX_BODY_BYTES = 16 * 1024 * 1024
JSON = "application/json"

Patch = Sequence[Mapping[str, Any]]
#: ``(pod, request) -> JSON patch`` (or an awaitable of it); raises to refuse the pod with the
#: exception's message. ``request.pod`` is the pod as the handler read it, to build on.
PatchBuilder = Callable[[Mapping[str, Any], AdmissionRequest], Patch | Awaitable[Patch]]


def _text(status: int, message: str) -> web.Response:
    # As Go's http.Error writes it.
    return web.Response(
        status=status,
        text=message + "\n",
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def _review(body: bytes) -> web.Response:
    return web.Response(status=200, body=body, content_type=JSON)


@dataclass
class MutateHandler:
    authorizer: Authorizer
    build_patch: PatchBuilder
    metrics: InjectorMetrics
    log: logging.Logger
    #: Exceptions of ``build_patch`` that are refusals, not bugs (logged without a traceback).
    expected_errors: tuple[type[Exception], ...] = ()
    #: ``(pod) -> bool``: False for pods that are already injected (the API server reinvokes).
    #: ``None`` asks the request's own reading (:attr:`PodSettings.needs_injection`).
    needs_injection: Callable[[Mapping[str, Any]], bool] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.metrics.request()
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _text(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _text(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        except (ConnectionError, OSError):
            body = b""
        if not body:
            return _text(400, "empty body")
        if request.headers.get("Content-Type") != JSON:
            return _text(415, f"invalid Content-Type, expected `{JSON}`")
        try:
            review = admission.parse_review(body)
        except admission.ReviewError as error:
            self.log.error("Can't decode body: %s", error.message)
            return _review(admission.denied(error.echo, error.message))
        return _review(await self.answer(review))

    async def answer(self, review: AdmissionRequest) -> bytes:
        """The AdmissionReview answering ``review`` (steps 4 to 7)."""
        pod = review.object
        app_id = review.pod.app_id
        if review.kind != "Pod":
            self.log.error("Invalid kind for review: %s", review.kind)
            self.metrics.failure(app_id, "pod_patch")
            return admission.allowed(review.echo)
        if not review.pod.enabled:
            return admission.allowed(review.echo)
        user = review.user
        if not self.authorizer.allows(user.username, user.uid, user.groups):
            self.log.error(
                "service account '%s' not on the list of allowed controller accounts",
                user.username,
            )
            self.metrics.failure(app_id, "pod_patch")
            return admission.allowed(review.echo)
        if not isinstance(pod, Mapping):
            return self._refuse(
                review,
                app_id,
                "could not unmarshal raw object: "
                f"expected a JSON object, got {admission.json_type(pod)}",
            )
        if not self._needs_injection(review):
            return admission.allowed(review.echo)
        try:
            result = self.build_patch(pod, review)
            patch = await result if inspect.isawaitable(result) else result
        except self.expected_errors as error:
            return self._refuse(review, app_id, str(error))
        except Exception as error:
            self.log.exception("Building the patch for app '%s' failed", app_id)
            return self._refuse(review, app_id, f"{type(error).__name__}: {error}")
        try:
            body = admission.allowed(review.echo, patch)
        except (TypeError, ValueError) as error:
            self.metrics.failure(app_id, "response")
            return admission.denied(review.echo, f"failed to encode the patch: {error}")
        if patch:
            self.log.info("Sidecar injector succeeded injection for app '%s'", app_id)
            self.metrics.success(app_id)
        return body

    def _needs_injection(self, review: AdmissionRequest) -> bool:
        if self.needs_injection is None:
            return review.pod.needs_injection
        return self.needs_injection(review.object)

    def _refuse(self, review: AdmissionRequest, app_id: str, message: str) -> bytes:
        self.log.error("Sidecar injector failed to inject for app '%s'. Error: %s", app_id, message)
        self.metrics.failure(app_id, "patch")
        return admission.denied(review.echo, message)


def application(handler: MutateHandler) -> web.Application:
    """The webhook app: ``/mutate`` for every method, as Go's ``ServeMux`` routes it."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_route("*", "/mutate", handler.handle)
    return app
