"""SignCertificate handling in process: validator selection, CSR checks, DNS names, hooks."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import grpc
import pluggy
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.core import hookspecs
from daprplane.core.markers import hookimpl
from daprplane.plugins.sentry.ca import Credentials, generate, pem
from daprplane.plugins.sentry.metrics import SentryMetrics
from daprplane.plugins.sentry.server import Authority, CAServicer, RequestFailed
from daprplane.plugins.sentry.validators import PluginValidator, ValidatorSet, plugin_validators
from daprplane.plugins.sentry.validators.base import TokenValidator, Validation
from daprplane.plugins.sentry.validators.insecure import InsecureValidator
from tests.pki import csr_pem, new_key

INSECURE = TokenValidator.INSECURE


def _servicer(validators: ValidatorSet | None = None, hook: Any = None) -> CAServicer:
    authority = Authority(
        credentials=Credentials(generate("localhost", "dapr-system", timedelta(minutes=15))),
        workload_cert_ttl=timedelta(hours=1),
        allowed_clock_skew=timedelta(minutes=15),
        namespace="dapr-system",
        cluster_domain="cluster.example",
    )
    validators = validators or ValidatorSet({INSECURE: InsecureValidator()}, INSECURE)
    return CAServicer(authority, validators, SentryMetrics(), hook)


def _request(**fields: Any) -> sentry_pb2.SignCertificateRequest:
    base: dict[str, Any] = {
        "id": "app",
        "namespace": "ns",
        "certificate_signing_request": csr_pem(),
    }
    return sentry_pb2.SignCertificateRequest(**{**base, **fields})


def _leaf(response: sentry_pb2.SignCertificateResponse) -> x509.Certificate:
    return pem.decode_certificates(response.workload_certificate)[0]


async def _fails(servicer: CAServicer, request: sentry_pb2.SignCertificateRequest) -> RequestFailed:
    with pytest.raises(RequestFailed) as caught:
        await servicer.sign(request)
    return caught.value


async def test_no_default_validator() -> None:
    servicer = _servicer(ValidatorSet({}, None))
    failure = await _fails(servicer, _request())
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.message == "a validator name must be specified in this environment"


@pytest.mark.parametrize("kind", [TokenValidator.JWKS, TokenValidator.KUBERNETES, -1, 99])
async def test_requested_validator_not_enabled(kind: int) -> None:
    failure = await _fails(_servicer(), _request(token_validator=kind))
    assert (failure.code, failure.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "the requested validator is not enabled",
    )


def _public_der(public_key: Any) -> bytes:
    return public_key.public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
async def test_csr_key_types(kind: str) -> None:
    private_key = new_key(kind)
    response = await _servicer().sign(_request(certificate_signing_request=csr_pem(private_key)))
    assert _public_der(_leaf(response).public_key()) == _public_der(private_key.public_key())


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1()])
async def test_nist_curves_are_signed(curve: ec.EllipticCurve) -> None:
    request = _request(certificate_signing_request=csr_pem(ec.generate_private_key(curve)))
    assert _leaf(await _servicer().sign(request))


@pytest.mark.parametrize("curve", [ec.SECP256K1(), ec.BrainpoolP256R1()])
async def test_curves_go_cannot_parse_are_refused(curve: ec.EllipticCurve) -> None:
    request = _request(certificate_signing_request=csr_pem(ec.generate_private_key(curve)))
    failure = await _fails(_servicer(), request)
    assert (failure.code, failure.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "failed to parse certificate signing request: x509: unsupported elliptic curve",
    )


async def test_a_csr_under_a_certificate_label_is_signed() -> None:
    # Only the DER matters, as in Go's pem.Decode + x509.ParseCertificateRequest: a CSR's DER
    # under a CERTIFICATE label still parses as a CSR and is signed for its key.
    private_key = new_key()
    request = _request(certificate_signing_request=csr_pem(private_key, block_type="CERTIFICATE"))
    leaf = _leaf(await _servicer().sign(request))
    assert _public_der(leaf.public_key()) == _public_der(private_key.public_key())


@pytest.mark.parametrize(
    ("app_id", "names"),
    [
        ("dapr-injector", ["dapr-sidecar-injector.dapr-system.svc"]),
        ("dapr-operator", ["dapr-webhook.dapr-system.svc"]),
        (
            "dapr-scheduler",
            [
                f"dapr-scheduler-server-{i}.dapr-scheduler-server.dapr-system.svc.cluster.example"
                for i in range(3)
            ],
        ),
        ("dapr-placement", []),
    ],
)
async def test_control_plane_dns_names(app_id: str, names: list[str]) -> None:
    servicer = _servicer()
    for namespace, expected in (("dapr-system", names), ("other", [])):
        leaf = _leaf(await servicer.sign(_request(id=app_id, namespace=namespace)))
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == expected


async def test_spiffe_segment_errors_are_internal() -> None:
    for fields in ({"id": "a b"}, {"namespace": ".."}, {"namespace": "a/b"}):
        failure = await _fails(_servicer(), _request(**fields))
        assert (failure.code, failure.message) == (
            grpc.StatusCode.INTERNAL,
            "failed to sign certificate",
        )


class _Audit:
    kind = 42
    healthz_target = "audit-validator"
    started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        pass

    async def validate(self, request: sentry_pb2.SignCertificateRequest) -> Validation:
        if request.token != "let-me-in":
            raise ValueError("bad token")
        ext = x509.UnrecognizedExtension(
            x509.ObjectIdentifier("1.3.6.1.4.1.57683.100.1"), b"\x04\x00"
        )
        return Validation("audit.example", (ext,))


class _Plugin:
    def __init__(self) -> None:
        self.issued: list[dict[str, Any]] = []

    @hookimpl
    def daprplane_sentry_token_validators(self) -> dict[str, Any]:
        async def by_name(request: sentry_pb2.SignCertificateRequest) -> str:
            return "callable.example"

        return {"audit": _Audit(), "jwks": by_name, "nameless": by_name}

    @hookimpl
    def daprplane_sentry_certificate_issued(self, spiffe_id: str, validator: str) -> None:
        self.issued.append({"spiffe_id": spiffe_id, "validator": validator})


class _Broken:
    @hookimpl
    def daprplane_sentry_certificate_issued(self, spiffe_id: str) -> None:
        raise RuntimeError("observer down")


def _hook(*plugins: Any) -> Any:
    manager = pluggy.PluginManager("daprplane")
    manager.add_hookspecs(hookspecs)
    for plugin in plugins:
        manager.register(plugin)
    return manager.hook


async def test_plugin_validators_and_observers() -> None:
    plugin = _Plugin()
    hook = _hook(_Broken(), plugin)
    found = plugin_validators(hook, __import__("logging").getLogger("test"))
    assert sorted(found) == ["audit", "jwks"], "a validator with no kind is skipped"
    assert found["jwks"].kind == TokenValidator.JWKS
    validators = ValidatorSet({v.kind: v for v in found.values()}, None)
    servicer = _servicer(validators, hook)

    failure = await _fails(servicer, _request(token_validator=42, token="nope"))
    assert (failure.code, failure.message) == (grpc.StatusCode.PERMISSION_DENIED, "bad token")
    response = await servicer.sign(_request(token_validator=42, token="let-me-in"))
    leaf = _leaf(response)
    assert str(
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value[0].value
    ) == ("spiffe://audit.example/ns/ns/app")
    leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.57683.100.1"))
    response = await servicer.sign(_request(token_validator=TokenValidator.JWKS))
    assert "spiffe://callable.example/ns/ns/app" in str(_leaf(response).extensions)
    assert plugin.issued == [
        {"spiffe_id": "spiffe://audit.example/ns/ns/app", "validator": "42"},
        {"spiffe_id": "spiffe://callable.example/ns/ns/app", "validator": "jwks"},
    ]
    assert isinstance(found["audit"], PluginValidator)
    await found["audit"].start()
    assert found["audit"].healthz_target == "audit-validator"


async def test_metrics_count_every_outcome() -> None:
    servicer = _servicer()
    await servicer.sign(_request())
    context = SimpleNamespace()

    async def abort(code: grpc.StatusCode, message: str) -> None:
        context.aborted = (code, message)
        raise grpc.aio.AbortError()

    context.abort = abort
    await servicer.SignCertificate(_request(), context)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AbortError):
        await servicer.SignCertificate(_request(id=""), context)  # type: ignore[arg-type]
    assert context.aborted[0] == grpc.StatusCode.PERMISSION_DENIED
    metrics = servicer.metrics
    assert (metrics.requests_received, metrics.sign_success, metrics.sign_failure) == (2, 1, 1)


async def test_csr_with_an_unknown_version_is_a_parse_error() -> None:
    # Newer cryptography releases reject a CSR version other than v1 with InvalidVersion, which
    # is not a ValueError; it must still be InvalidArgument, not an internal error.
    der = bytearray(next(pem.blocks(csr_pem(new_key("ed25519")))).der)
    version = der.index(bytes([0x02, 0x01, 0x00]))  # the first INTEGER: CertificationRequestInfo
    der[version + 2] = 118
    mutated = pem.encode("CERTIFICATE REQUEST", bytes(der))
    failure = await _fails(_servicer(), _request(certificate_signing_request=mutated))
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.message.startswith("failed to parse certificate signing request")
