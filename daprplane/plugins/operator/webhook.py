"""``POST /convert``: the HTTP side of the Subscription conversion webhook (contract §5.1).

The API server posts a ``ConversionReview`` and expects one back; the conversion itself is
:func:`~daprplane.plugins.operator.conversion.review_response`, which answers every decodable
review (failures included) with HTTP 200. Only a body that is not JSON gets HTTP 400 with a
plain-text reason. The ``Content-Type`` is not checked: a JSON body is served whatever it says.

TLS is not this module's business: the operator serves the application with its SVID's
``ssl.SSLContext`` (``daprplane.core.runtime.serving`` and ``LiveServerContext``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from daprplane.plugins.operator.conversion import review_response

PATH = "/convert"
#: Largest review read. The API server converts a whole LIST response in one review, so a
#: namespace with many Subscriptions makes a large body; far beyond that is refused with 413.
MAX_BODY_BYTES = 64 * 1024 * 1024


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, and echoing them would make the answer invalid JSON too.
    raise ValueError(f"invalid JSON value {name}")


def _decode(body: bytes) -> Any:
    """The JSON value of ``body``; raises ``ValueError`` with the reason."""
    if not body.strip():
        raise ValueError("empty body")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


def conversion_application(log: logging.Logger) -> web.Application:
    """The webhook application: ``POST /convert``. Serve it over TLS."""

    async def convert(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _text(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        try:
            review = _decode(body)
        except ValueError as error:
            log.error("Conversion webhook: cannot decode the request body: %s", error)
            return _text(400, f"cannot decode the ConversionReview: {error}")
        answer = review_response(review)
        result = answer["response"]["result"]
        if result["status"] != "Success":
            log.error("Conversion webhook: %s", result["message"])
        return web.Response(
            status=200, text=json.dumps(answer, allow_nan=False), content_type="application/json"
        )

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post(PATH, convert)
    return app
