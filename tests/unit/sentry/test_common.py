"""The common validator checks (contract §4.1) and the insecure validator (§4.2)."""

from __future__ import annotations

import pytest

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.plugins.sentry.validators import ValidationError
from daprplane.plugins.sentry.validators.common import validate
from daprplane.plugins.sentry.validators.insecure import InsecureValidator

OK = {"id": "app", "namespace": "ns", "certificate_signing_request": b"csr"}


def _request(**fields):  # type: ignore[no-untyped-def]
    return sentry_pb2.SignCertificateRequest(**{**OK, **fields})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": ""}, "invalid request: parameter app-id cannot be empty"),
        ({"id": "a.b"}, "invalid request: parameter app-id cannot contain dots"),
        ({"id": "a" * 65}, "invalid request: app ID must be 64 characters or less"),
        (
            {"id": "a." * 33},
            (
                "invalid request: parameter app-id cannot contain dots\napp ID must be 64 "
                "characters or less"
            ),
        ),
        ({"certificate_signing_request": b""}, "invalid request: CSR is required"),
        ({"namespace": ""}, "invalid request: namespace is required"),
        (
            {"id": "", "namespace": "", "certificate_signing_request": b""},
            (
                "invalid request: parameter app-id cannot be empty\nCSR is "
                "required\nnamespace is required"
            ),
        ),
        (
            {"trust_domain": "Bad"},
            (
                "trust domain characters are limited to lowercase letters, numbers, dots, "
                "dashes, and underscores"
            ),
        ),
    ],
)
def test_rejections(fields, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as caught:
        validate(_request(**fields))
    assert str(caught.value) == message


def test_64_characters_is_fine() -> None:
    assert validate(_request(id="a" * 64)) == "public"


@pytest.mark.parametrize(
    ("trust_domain", "expected"),
    [("", "public"), ("example.org", "example.org"), ("spiffe://td.x/ns/a/b", "td.x")],
)
def test_trust_domain(trust_domain: str, expected: str) -> None:
    assert validate(_request(trust_domain=trust_domain)) == expected


async def test_insecure_validator_takes_the_requested_trust_domain() -> None:
    validator = InsecureValidator()
    assert validator.healthz_target is None
    assert validator.kind == sentry_pb2.SignCertificateRequest.INSECURE
    result = await validator.validate(_request(trust_domain="anything.goes"))
    assert result.trust_domain == "anything.goes" and result.extensions == ()
