"""``dapr.proto.sentry.v1.CA/SignCertificate``: the order of checks, codes and messages of Dapr's
``pkg/sentry/server/server.go``.

Serve it with :func:`add_to_server` rather than the generated ``add_CAServicer_to_server``: the
request is then decoded by :mod:`daprplane.core.grpc_decoding`, so bytes that are not a
``SignCertificateRequest`` get grpc-go's ``INTERNAL`` "grpc: error unmarshalling request: ..."
instead of grpc.aio's ``UNKNOWN``.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import pluggy
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from google.protobuf import timestamp_pb2

from daprplane._proto.sentry.v1 import sentry_pb2, sentry_pb2_grpc
from daprplane.core import grpc_decoding
from daprplane.core.hookcall import call_each
from daprplane.core.security.spiffe import SpiffeId, SpiffeIdError
from daprplane.plugins.sentry.ca import Credentials, pem, sign_workload
from daprplane.plugins.sentry.ca.workload import PublicKey
from daprplane.plugins.sentry.metrics import SentryMetrics
from daprplane.plugins.sentry.validators import ValidatorSet, kind_name
from daprplane.plugins.sentry.validators.base import TokenValidator, Validation
from daprplane.plugins.sentry.validators.common import (
    InvalidTrustDomain,
    trust_domain_shape_problem,
)

log = logging.getLogger("dapr.sentry.server")

SERVICE = "dapr.proto.sentry.v1.CA"

#: Hostnames control-plane services serve webhooks or peers on, by their app ID.
_SCHEDULER_REPLICAS = 3


class RequestFailed(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Authority:
    """What signing needs; the service swaps ``credentials`` when the CA is reloaded."""

    credentials: Credentials
    workload_cert_ttl: timedelta
    allowed_clock_skew: timedelta
    #: Sentry's own namespace and the cluster domain used in the scheduler's DNS names.
    namespace: str
    cluster_domain: str
    jwt_enabled: bool = False
    jwt_ttl: timedelta = timedelta(hours=24)
    jwt_issuer: str = ""


def control_plane_dns_names(app_id: str, namespace: str, cluster_domain: str) -> list[str]:
    if app_id == "dapr-injector":
        return [f"dapr-sidecar-injector.{namespace}.svc"]
    if app_id == "dapr-operator":
        return [f"dapr-webhook.{namespace}.svc"]
    if app_id == "dapr-scheduler":
        return [
            f"dapr-scheduler-server-{i}.dapr-scheduler-server.{namespace}.svc.{cluster_domain}"
            for i in range(_SCHEDULER_REPLICAS)
        ]
    return []


_GO_CURVES = (ec.SECP224R1, ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


def _parse_csr(data: bytes) -> PublicKey:
    """The public key of a well-formed CSR whose self-signature verifies."""
    block = next(pem.blocks(data), None)
    # "CERTIFICATE" is accepted for legacy clients; its DER then fails to parse as a CSR.
    if block is None or block.type not in ("CERTIFICATE REQUEST", "CERTIFICATE"):
        raise RequestFailed(grpc.StatusCode.INVALID_ARGUMENT, "invalid certificate signing request")
    try:
        csr = x509.load_der_x509_csr(block.der)
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion) as error:
        raise RequestFailed(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"failed to parse certificate signing request: {error}",
        ) from None
    if isinstance(public_key, ec.EllipticCurvePublicKey) and not isinstance(
        public_key.curve, _GO_CURVES
    ):
        # Go's x509 parses ECDSA keys on the NIST curves only, and refuses the CSR itself.
        raise RequestFailed(
            grpc.StatusCode.INVALID_ARGUMENT,
            "failed to parse certificate signing request: x509: unsupported elliptic curve",
        )
    # Go verifies only RSA, ECDSA and Ed25519 keys; anything else cannot be checked.
    supported = isinstance(
        public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
    )
    try:
        valid = supported and csr.is_signature_valid
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, x509.InvalidVersion):
        valid = False
    if not valid:
        raise RequestFailed(grpc.StatusCode.INVALID_ARGUMENT, "invalid signature")
    return public_key  # type: ignore[return-value]  # one of the supported types, checked above


def _observer_failed(impl: pluggy.HookImpl, error: Exception) -> None:
    log.error("Certificate observer of plugin %s failed: %s", impl.plugin_name, error)


def _timestamp(moment: datetime.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _certificate_pem(certificate: x509.Certificate) -> bytes:
    # cryptography's PEM is byte-identical to pem.encode (Go's layout) and done in native code.
    return certificate.public_bytes(serialization.Encoding.PEM)


def add_to_server(servicer: CAServicer, server: grpc.aio.Server) -> None:
    """Serve ``servicer`` on ``server``, its requests decoded by :mod:`.grpc_decoding`."""
    handlers = {
        "SignCertificate": grpc_decoding.unary_unary(
            servicer.SignCertificate,
            sentry_pb2.SignCertificateRequest,
            sentry_pb2.SignCertificateResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


class CAServicer(sentry_pb2_grpc.CAServicer):
    def __init__(
        self,
        authority: Authority,
        validators: ValidatorSet,
        metrics: SentryMetrics,
        hook: Any = None,
    ) -> None:
        self.authority = authority
        self.validators = validators
        self.metrics = metrics
        self.hook = hook

    async def SignCertificate(
        self, request: sentry_pb2.SignCertificateRequest, context: grpc.aio.ServicerContext
    ) -> sentry_pb2.SignCertificateResponse:
        self.metrics.request_received()
        try:
            response = await self.sign(request)
        except RequestFailed as failure:
            self.metrics.failed()
            log.debug("SignCertificate for %r failed: %s", request.id, failure.message)
            await context.abort(failure.code, failure.message)
        except asyncio.CancelledError:
            self.metrics.failed()
            raise
        except Exception as error:
            # Never let a bug take the server down; answer Internal as Dapr does for sign errors.
            self.metrics.failed()
            log.exception(
                "Unexpected error signing a certificate for %r: %s: %s",
                request.id,
                type(error).__name__,
                error,
            )
            await context.abort(grpc.StatusCode.INTERNAL, "failed to sign certificate")
        self.metrics.succeeded()
        return response

    async def sign(
        self, request: sentry_pb2.SignCertificateRequest
    ) -> sentry_pb2.SignCertificateResponse:
        kind = self.validators.default
        if request.token_validator != TokenValidator.UNKNOWN:
            kind = request.token_validator
        if kind is None:
            raise RequestFailed(
                grpc.StatusCode.INVALID_ARGUMENT,
                "a validator name must be specified in this environment",
            )
        validator = self.validators.validators.get(kind)
        if validator is None:
            raise RequestFailed(
                grpc.StatusCode.INVALID_ARGUMENT, "the requested validator is not enabled"
            )
        try:
            validation = await validator.validate(request)
        except asyncio.CancelledError:
            raise
        except InvalidTrustDomain as error:  # a malformed request, not a refused identity
            raise RequestFailed(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
        except Exception as error:  # every validator error is PermissionDenied with its message
            raise RequestFailed(grpc.StatusCode.PERMISSION_DENIED, str(error)) from None

        public_key = _parse_csr(request.certificate_signing_request)
        authority = self.authority
        credentials = authority.credentials  # one consistent CA for the whole request
        dns_names: Sequence[str] = ()
        if request.namespace == authority.namespace:
            dns_names = control_plane_dns_names(
                request.id, authority.namespace, authority.cluster_domain
            )
        try:
            # The trust domain may come from a Configuration or a plugin, not only the request.
            problem = trust_domain_shape_problem(validation.trust_domain)
            if problem is not None:
                raise SpiffeIdError(f"trust domain {validation.trust_domain!r}: {problem}")
            spiffe_id = SpiffeId.for_app(validation.trust_domain, request.namespace, request.id)
            leaf = sign_workload(
                credentials.bundle,
                public_key,
                spiffe_id,
                ttl=authority.workload_cert_ttl,
                skew=authority.allowed_clock_skew,
                dns_names=dns_names,
                extensions=validation.extensions,
            )
        except (SpiffeIdError, ValueError, TypeError) as error:
            log.error("Failed to sign certificate for %r: %s", request.id, error)
            raise RequestFailed(grpc.StatusCode.INTERNAL, "failed to sign certificate") from None
        try:
            chain = _certificate_pem(leaf) + credentials.bundle.issuer_chain_pem
        except ValueError:
            raise RequestFailed(
                grpc.StatusCode.INTERNAL, "failed to encode certificate chain"
            ) from None
        response = sentry_pb2.SignCertificateResponse(
            workload_certificate=chain,
            trust_chain_certificates=[credentials.bundle.trust_anchors_pem],
            valid_until=_timestamp(leaf.not_valid_after_utc),
        )
        if credentials.jwt is not None and authority.jwt_enabled:
            self._add_jwts(response, credentials, validation, str(spiffe_id), request)
        self._observe(str(spiffe_id), request, leaf, kind)
        return response

    def _add_jwts(
        self,
        response: sentry_pb2.SignCertificateResponse,
        credentials: Credentials,
        validation: Validation,
        subject: str,
        request: sentry_pb2.SignCertificateRequest,
    ) -> None:
        from daprplane.plugins.sentry import jwt  # present whenever JWT material is loaded

        authority = self.authority
        material = credentials.jwt
        assert material is not None  # the caller checked
        try:
            token, per_audience = jwt.issue_tokens(
                material,
                subject=subject,
                audiences=[validation.trust_domain, *request.jwt_audiences],
                ttl=authority.jwt_ttl,
                skew=authority.allowed_clock_skew,
                issuer=authority.jwt_issuer,
            )
        except jwt.JwtIssueError as error:  # already worded as Dapr words it
            raise RequestFailed(grpc.StatusCode.INTERNAL, str(error)) from None
        except Exception as error:
            message = f"failed to generate JWT: {error}"
            raise RequestFailed(grpc.StatusCode.INTERNAL, message) from None
        if not token:
            raise RequestFailed(grpc.StatusCode.INTERNAL, "failed to generate JWT: empty token")
        response.jwt.value = token
        for audience, value in per_audience.items():
            response.per_audience_jwts[audience].value = value

    def _observe(
        self,
        spiffe_id: str,
        request: sentry_pb2.SignCertificateRequest,
        leaf: x509.Certificate,
        kind: int,
    ) -> None:
        caller = getattr(self.hook, "daprplane_sentry_certificate_issued", None)
        if caller is None or not caller.get_hookimpls():
            return
        arguments = {
            "spiffe_id": spiffe_id,
            "namespace": request.namespace,
            "app_id": request.id,
            "not_after": leaf.not_valid_after_utc,
            "validator": kind_name(kind),
        }
        # Through pluggy, each observer on its own: one that raises must not fail the request
        # or hide it from the others.
        call_each(caller, arguments, _observer_failed)
