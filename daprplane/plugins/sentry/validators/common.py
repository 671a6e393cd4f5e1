"""The checks every validator makes first (Dapr's ``validator/internal/common.go``)."""

from __future__ import annotations

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.core.security import spiffe
from daprplane.plugins.sentry.validators.base import ValidationError

#: Trust domain of workloads that do not name one.
PUBLIC_TRUST_DOMAIN = "public"
MAX_APP_ID_LENGTH = 64


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
        return spiffe.trust_domain_from_string(request.trust_domain)
    except spiffe.SpiffeIdError as error:
        raise ValidationError(str(error)) from None


def validate(request: sentry_pb2.SignCertificateRequest) -> str:
    """The common checks, then the trust domain the request asks for."""
    check_request(request)
    return requested_trust_domain(request)
