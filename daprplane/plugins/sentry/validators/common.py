"""The checks every validator makes first (Dapr's ``validator/internal/common.go``).

A requested trust domain is read as go-spiffe reads it (characters outside lowercase letters,
digits, ``.``, ``-`` and ``_`` are a validator error, as in Dapr), and then also held to the shape
of a name: no empty dot-separated label and at most 255 bytes (the SPIFFE ID standard's limit).
go-spiffe accepts ``.`` or ``a..b``, and Dapr would issue ``spiffe://./ns/<ns>/<id>``; such a
request is refused with :class:`InvalidTrustDomain` instead (``InvalidArgument``).
"""

from __future__ import annotations

import json

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.core.security import spiffe
from daprplane.plugins.sentry.validators.base import ValidationError

#: Trust domain of workloads that do not name one.
PUBLIC_TRUST_DOMAIN = "public"
MAX_APP_ID_LENGTH = 64
#: The longest trust domain the SPIFFE ID standard allows (a URI host, RFC 3986).
MAX_TRUST_DOMAIN_BYTES = 255


class InvalidTrustDomain(ValidationError):
    """A requested trust domain no certificate may name; answered with ``InvalidArgument``."""

    def __init__(self, trust_domain: str, reason: str) -> None:
        super().__init__(f"invalid trust domain {json.dumps(trust_domain)}: {reason}")
        self.trust_domain = trust_domain
        self.reason = reason


def trust_domain_shape_problem(trust_domain: str) -> str | None:
    """Why a trust domain made of allowed characters is still not a name, or ``None``."""
    if len(trust_domain.encode()) > MAX_TRUST_DOMAIN_BYTES:
        return f"a trust domain is at most {MAX_TRUST_DOMAIN_BYTES} bytes long"
    if "" in trust_domain.split("."):
        return "a trust domain cannot have an empty label (a leading, trailing or doubled dot)"
    return None


def request_errors(request: sentry_pb2.SignCertificateRequest) -> list[str]:
    errors: list[str] = []
    app_id = request.id
    if not app_id:
        errors.append("parameter app-id cannot be empty")
    elif "." in app_id:
        errors.append("parameter app-id cannot contain dots")
    if len(app_id.encode()) > MAX_APP_ID_LENGTH:
        errors.append("app ID must be 64 characters or less")
    if not request.certificate_signing_request:
        errors.append("CSR is required")
    if not request.namespace:
        errors.append("namespace is required")
    return errors


def check_request(request: sentry_pb2.SignCertificateRequest) -> None:
    """Raise every problem at once, joined as Go's ``errors.Join`` joins them (newlines)."""
    errors = request_errors(request)
    if errors:
        raise ValidationError("invalid request: " + "\n".join(errors))


def requested_trust_domain(request: sentry_pb2.SignCertificateRequest) -> str:
    """The request's trust domain (a bare name or any SPIFFE ID's), ``public`` when empty."""
    if not request.trust_domain:
        return PUBLIC_TRUST_DOMAIN
    try:
        trust_domain = spiffe.trust_domain_from_string(request.trust_domain)
    except spiffe.SpiffeIdError as error:
        raise ValidationError(str(error)) from None
    problem = trust_domain_shape_problem(trust_domain)
    if problem is not None:
        raise InvalidTrustDomain(trust_domain, problem)
    return trust_domain


def validate(request: sentry_pb2.SignCertificateRequest) -> str:
    """The common checks, then the trust domain the request asks for."""
    check_request(request)
    return requested_trust_domain(request)
