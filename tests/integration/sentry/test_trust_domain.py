"""Requested trust domains over real gRPC with a real standalone sentry (insecure validator,
which takes the trust domain from the request)."""

from __future__ import annotations

import grpc
import pytest
from cryptography import x509

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.plugins.sentry.ca import pem
from tests.integration.launchers import http_status
from tests.integration.sentry.client import ca_stub
from tests.integration.sentry.conftest import SentryProcess
from tests.pki import csr_pem

EMPTY_LABEL = "a trust domain cannot have an empty label (a leading, trailing or doubled dot)"


def _sign(sentry: SentryProcess, trust_domain: str) -> sentry_pb2.SignCertificateResponse:
    request = sentry_pb2.SignCertificateRequest(
        id="app",
        namespace="default",
        certificate_signing_request=csr_pem(),
        trust_domain=trust_domain,
        token_validator=sentry_pb2.SignCertificateRequest.INSECURE,
    )
    with ca_stub(sentry.port, sentry.trust_anchors) as (stub, _):
        response: sentry_pb2.SignCertificateResponse = stub.SignCertificate(request, timeout=10)
    return response


@pytest.mark.parametrize(
    ("sent", "named"),
    [
        (".", "."),
        ("..", ".."),
        (".example.org", ".example.org"),
        ("example.org.", "example.org."),
        ("example..org", "example..org"),
        ("spiffe://./ns/default/app", "."),
    ],
)
def test_empty_labels_are_invalid_argument(sentry: SentryProcess, sent: str, named: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _sign(sentry, sent)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == f'invalid trust domain "{named}": {EMPTY_LABEL}'


def test_too_long_is_invalid_argument(sentry: SentryProcess) -> None:
    too_long = ".".join(["a" * 63] * 4) + "a"
    with pytest.raises(grpc.RpcError) as caught:
        _sign(sentry, too_long)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == (
        f'invalid trust domain "{too_long}": a trust domain is at most 255 bytes long'
    )


def test_characters_outside_spiffes_set_keep_daprs_answer(sentry: SentryProcess) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _sign(sentry, "Example.org")
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == (
        "trust domain characters are limited to lowercase letters, numbers, dots, dashes, "
        "and underscores"
    )


def test_a_valid_trust_domain_is_still_signed(sentry: SentryProcess) -> None:
    response = _sign(sentry, "example-1.org_x")
    leaf = pem.decode_certificates(response.workload_certificate)[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://example-1.org_x/ns/default/app"
    ]
    assert http_status(f"http://127.0.0.1:{sentry.healthz_port}/healthz") == 200
