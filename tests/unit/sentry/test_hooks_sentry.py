"""Sentry's hooks through pluggy: validators and issuance observers, in pluggy's order."""

from __future__ import annotations

import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.core.host import PluginHost
from daprplane.plugin import Validation, check_sign_request, hookimpl
from daprplane.plugins.sentry import plugin as sentry_plugin
from daprplane.plugins.sentry.ca import Credentials, generate
from daprplane.plugins.sentry.metrics import SentryMetrics
from daprplane.plugins.sentry.server import Authority, CAServicer
from daprplane.plugins.sentry.validators import ValidatorSet, plugin_validators
from daprplane.plugins.sentry.validators.base import TokenValidator
from daprplane.plugins.sentry.validators.insecure import InsecureValidator
from tests.pki import csr_pem

LOG = logging.getLogger("test.sentry.hooks")


def host_with(*plugins: tuple[str, object]) -> PluginHost:
    host = PluginHost(environ={})
    assert host.register(sentry_plugin, "sentry")
    for name, plugin in plugins:
        assert host.register(plugin, name), host.records[-1].reason
    return host


def servicer(host: PluginHost) -> CAServicer:
    authority = Authority(
        credentials=Credentials(generate("localhost", "dapr-system", timedelta(minutes=15))),
        workload_cert_ttl=timedelta(hours=1),
        allowed_clock_skew=timedelta(minutes=15),
        namespace="dapr-system",
        cluster_domain="cluster.example",
    )
    insecure = TokenValidator.INSECURE
    validators = ValidatorSet({insecure: InsecureValidator()}, insecure)
    return CAServicer(authority, validators, SentryMetrics(), host.hook)


def request(**fields: Any) -> sentry_pb2.SignCertificateRequest:
    base = {"id": "app", "namespace": "ns", "certificate_signing_request": csr_pem()}
    return sentry_pb2.SignCertificateRequest(**{**base, **fields})


def offering(trust_domain: str, **options: Any) -> object:
    class Offers:
        @hookimpl(**options)
        def daprplane_sentry_token_validators(self) -> dict[str, Any]:
            def validate(req: sentry_pb2.SignCertificateRequest) -> Validation:
                check_sign_request(req)
                return Validation(trust_domain)

            return {"jwks": validate, f"{trust_domain}-only": _with_kind(validate, trust_domain)}

    return Offers()


def _with_kind(check: Any, trust_domain: str) -> Any:
    class Kinded:
        kind = 100 + len(trust_domain)
        healthz_target = None

        def validate(self, req: sentry_pb2.SignCertificateRequest) -> Any:
            return check(req)

    return Kinded()


async def test_validators_come_in_pluggys_order_and_the_first_keeps_a_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = host_with(
        ("late", offering("late.example", trylast=True)),
        ("plain", offering("plain.example")),
        ("early", offering("early.example", tryfirst=True)),
    )
    with caplog.at_level(logging.ERROR):
        found = plugin_validators(host.hook, LOG)
    # "jwks" is a name every plugin offers: the one pluggy calls first keeps it.
    validation = await found["jwks"].validate(request())
    assert validation.trust_domain == "early.example"
    assert "Ignoring token validator 'jwks' of plugin plain" in caplog.text
    assert "Ignoring token validator 'jwks' of plugin late" in caplog.text
    assert list(found) == ["jwks", "early.example-only", "plain.example-only", "late.example-only"]


def test_a_validator_wrapper_can_add_one_and_a_broken_plugin_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Adds:
        @hookimpl(wrapper=True)
        def daprplane_sentry_token_validators(self) -> Generator[None, list[Any], list[Any]]:
            results = yield
            return [*results, {"wrapped": lambda req: "wrapped.example"}]

    class Broken:
        @hookimpl
        def daprplane_sentry_token_validators(self) -> dict[str, Any]:
            raise RuntimeError("vault unreachable")

    host = host_with(("adds", Adds()), ("broken", Broken()), ("plain", offering("p.example")))
    with caplog.at_level(logging.ERROR):
        found = plugin_validators(host.hook, LOG)
    assert "wrapped" not in found, "a name that is neither an enum name nor a number"
    assert {"jwks", "p.example-only"} <= set(found)
    assert "Token validators of plugin broken failed to load: vault unreachable" in caplog.text
    assert "Ignoring token validator 'wrapped' of plugin (a hook wrapper)" in caplog.text


def observer(name: str, seen: list[str], **options: Any) -> object:
    class Observer:
        @hookimpl(**options)
        def daprplane_sentry_certificate_issued(self, spiffe_id: str, validator: str) -> None:
            seen.append(f"{name} {spiffe_id} {validator}")

    return Observer()


async def test_observers_run_in_pluggys_order_inside_wrappers_and_failures_stay_theirs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def daprplane_sentry_certificate_issued(self, app_id: str) -> Generator[None, Any, Any]:
            seen.append(f"before {app_id}")
            result = yield
            seen.append(f"after {app_id}")
            return result

    class OldStyle:
        @hookimpl(hookwrapper=True)
        def daprplane_sentry_certificate_issued(self) -> Generator[None, Any, None]:
            seen.append("old-style before")
            yield
            seen.append("old-style after")

    class Broken:
        @hookimpl
        def daprplane_sentry_certificate_issued(self) -> None:
            raise RuntimeError("audit log full")

    host = host_with(
        ("last", observer("last", seen, trylast=True)),
        ("broken", Broken()),
        ("wrapper", Wrapper()),
        ("plain", observer("plain", seen)),
        ("first", observer("first", seen, tryfirst=True)),
        ("old-style", OldStyle()),
    )
    with caplog.at_level(logging.ERROR):
        await servicer(host).sign(request())
    spiffe = "spiffe://public/ns/ns/app insecure"
    assert seen == [
        "old-style before",
        "before app",
        f"first {spiffe}",
        f"plain {spiffe}",
        f"last {spiffe}",
        "after app",
        "old-style after",
    ]
    assert "Certificate observer of plugin broken failed: audit log full" in caplog.text
