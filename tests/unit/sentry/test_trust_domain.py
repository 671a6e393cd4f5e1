"""Requested trust domains: go-spiffe's character rule (a validator error, as in Dapr) and then
the shape of a name (no empty label, at most 255 bytes), refused with ``InvalidArgument``."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import grpc
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.plugins.sentry.ca import Credentials, generate
from daprplane.plugins.sentry.metrics import SentryMetrics
from daprplane.plugins.sentry.server import Authority, CAServicer, RequestFailed
from daprplane.plugins.sentry.validators import PluginValidator, ValidationError, ValidatorSet
from daprplane.plugins.sentry.validators.base import TokenValidator
from daprplane.plugins.sentry.validators.common import (
    InvalidTrustDomain,
    requested_trust_domain,
    trust_domain_shape_problem,
)
from daprplane.plugins.sentry.validators.insecure import InsecureValidator
from tests.pki import csr_pem

#: A trust domain that is a name: dot-separated non-empty labels of SPIFFE's characters.
NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_"
CHARSET_MESSAGE = (
    "trust domain characters are limited to lowercase letters, numbers, dots, dashes, "
    "and underscores"
)

labels = st.text(alphabet=CHARS, min_size=1, max_size=12)
names = st.lists(labels, min_size=1, max_size=5).map(".".join)


def _request(trust_domain: str) -> sentry_pb2.SignCertificateRequest:
    return sentry_pb2.SignCertificateRequest(
        id="app", namespace="ns", certificate_signing_request=b"csr", trust_domain=trust_domain
    )


@given(name=names)
def test_names_are_taken_as_they_are(name: str) -> None:
    assert requested_trust_domain(_request(name)) == name
    assert requested_trust_domain(_request(f"spiffe://{name}/ns/a/b")) == name


@given(parts=st.lists(st.text(alphabet=CHARS, max_size=6), min_size=2, max_size=6))
@example(parts=["", ""])  # "."
@example(parts=["", "", ""])  # ".."
@example(parts=["example", "org", ""])  # a trailing dot
def test_empty_labels_are_invalid_arguments_naming_the_domain(parts: list[str]) -> None:
    trust_domain = ".".join(parts)
    if all(parts):
        return  # no empty label: covered by the test above
    for sent in (trust_domain, f"spiffe://{trust_domain}/ns/a/b"):
        with pytest.raises(InvalidTrustDomain) as caught:
            requested_trust_domain(_request(sent))
        assert str(caught.value).startswith(f"invalid trust domain {json.dumps(trust_domain)}: ")
        assert "empty label" in str(caught.value)


def test_the_length_limit_is_255_bytes() -> None:
    longest = ".".join(["a" * 63] * 4)  # 255 bytes
    assert requested_trust_domain(_request(longest)) == longest
    with pytest.raises(InvalidTrustDomain, match=r"at most 255 bytes"):
        requested_trust_domain(_request(longest + "a"))


@given(text=st.text(max_size=40))
@example(text=".")
@example(text="UPPER")
@example(text="spiffe://")
def test_any_text_is_a_name_or_refused(text: str) -> None:
    """Whatever is sent: a name comes back, or a ValidationError says why. Only what go-spiffe
    accepts can be an InvalidTrustDomain; what it refuses keeps Dapr's validator error."""
    if not text:
        assert requested_trust_domain(_request(text)) == "public"
        return
    try:
        result = requested_trust_domain(_request(text))
    except InvalidTrustDomain as error:
        assert re.fullmatch(r"[a-z0-9._-]+", error.trust_domain)
        assert trust_domain_shape_problem(error.trust_domain) == error.reason
        assert json.dumps(error.trust_domain) in str(error)
    except ValidationError as error:
        assert str(error) in (
            CHARSET_MESSAGE,
            "trust domain is missing",
            "scheme is missing or invalid",
        ) or str(error).startswith("path ")
    else:
        assert NAME.fullmatch(result) and len(result.encode()) <= 255


@pytest.mark.parametrize("text", ["UPPER", "Example.org", "a b", "ünïcode", "a:1"])
def test_characters_go_spiffe_refuses_keep_daprs_error(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        requested_trust_domain(_request(text))
    assert not isinstance(caught.value, InvalidTrustDomain)
    assert str(caught.value) == CHARSET_MESSAGE


def _servicer(validators: ValidatorSet) -> CAServicer:
    authority = Authority(
        credentials=Credentials(generate("localhost", "dapr-system", timedelta(minutes=15))),
        workload_cert_ttl=timedelta(hours=1),
        allowed_clock_skew=timedelta(minutes=15),
        namespace="dapr-system",
        cluster_domain="cluster.local",
    )
    return CAServicer(authority, validators, SentryMetrics())


async def test_the_servicer_answers_invalid_argument() -> None:
    insecure = TokenValidator.INSECURE
    servicer = _servicer(ValidatorSet({insecure: InsecureValidator()}, insecure))
    request = sentry_pb2.SignCertificateRequest(
        id="app", namespace="ns", certificate_signing_request=csr_pem(), trust_domain="."
    )
    with pytest.raises(RequestFailed) as caught:
        await servicer.sign(request)
    assert (caught.value.code, caught.value.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        'invalid trust domain ".": a trust domain cannot have an empty label '
        "(a leading, trailing or doubled dot)",
    )


async def test_a_validator_that_settles_on_a_bad_domain_gets_no_certificate() -> None:
    """Trust domains from elsewhere (a plugin, a Configuration) are checked before signing."""

    async def dotty(_request: sentry_pb2.SignCertificateRequest) -> str:
        return "a..b"

    servicer = _servicer(ValidatorSet({99: PluginValidator("dotty", dotty, 99)}, 99))
    request = sentry_pb2.SignCertificateRequest(
        id="app", namespace="ns", certificate_signing_request=csr_pem()
    )
    with pytest.raises(RequestFailed) as caught:
        await servicer.sign(request)
    assert (caught.value.code, caught.value.message) == (
        grpc.StatusCode.INTERNAL,
        "failed to sign certificate",
    )
