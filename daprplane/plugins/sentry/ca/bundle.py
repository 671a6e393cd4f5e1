"""The X.509 trust bundle: generated as Dapr generates it, or brought by the operator and verified.

Storage-agnostic: it reads and writes the bytes of ``ca.crt``, ``issuer.crt`` and ``issuer.key``;
where those bytes live (files, a Secret) is the store's business.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import secrets
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from daprplane.plugins.sentry.ca import pem
from daprplane.plugins.sentry.ca.pem import PemError, PrivateKey

#: Generated roots and issuers live one year (``defaultCATTL``).
CA_TTL = timedelta(days=365)


class BundleError(ValueError):
    """CA material that cannot be used; the message says why, as Dapr words it."""


@dataclass(frozen=True)
class TrustBundle:
    """The CA sentry signs with: trust anchors, issuer chain (root excluded) and issuer key."""

    trust_anchors: tuple[x509.Certificate, ...]
    issuer_chain: tuple[x509.Certificate, ...]
    issuer_key: PrivateKey
    #: Re-encoded PEM, as it is stored and served.
    trust_anchors_pem: bytes
    issuer_chain_pem: bytes
    issuer_key_pem: bytes

    @property
    def issuer(self) -> x509.Certificate:
        return self.issuer_chain[0]

    @classmethod
    def build(
        cls,
        anchors: list[x509.Certificate],
        chain: list[x509.Certificate],
        key: PrivateKey,
    ) -> TrustBundle:
        return cls(
            trust_anchors=tuple(anchors),
            issuer_chain=tuple(chain),
            issuer_key=key,
            trust_anchors_pem=pem.encode_certificates(anchors),
            issuer_chain_pem=pem.encode_chain(chain),
            issuer_key_pem=pem.encode_private_key(key),
        )


def random_serial() -> int:
    """Uniform in [1, 2^128): Go draws from [0, 2^128); zero is not a valid DER serial here."""
    return secrets.randbelow((1 << 128) - 1) + 1


def subject_key_id(public_key: ed25519.Ed25519PublicKey) -> bytes:
    """Go >= 1.25: SHA-256 of the subjectPublicKey bits, truncated to 160 bits."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:20]


def sentry_spiffe_id(trust_domain: str, namespace: str) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/dapr-sentry"


def _ca_certificate(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ed25519.Ed25519PublicKey,
    signer: ed25519.Ed25519PrivateKey,
    *,
    crl_sign: bool,
    now: datetime.datetime,
    skew: timedelta,
) -> x509.Certificate:
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(now - skew)
        .not_valid_after(now + CA_TTL)
        .add_extension(usage, critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(subject_key_id(public_key)), critical=False)
        .sign(signer, algorithm=None)
    )


def generate(
    trust_domain: str,
    namespace: str,
    skew: timedelta,
    now: datetime.datetime | None = None,
) -> TrustBundle:
    """A new Ed25519 root (``O=<td>``) and issuer (``O=<sentry SPIFFE ID>``), both 365 days.

    The issuer has no AuthorityKeyIdentifier: Go signs it with the root *template*, whose
    SubjectKeyId is empty.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    root_key = ed25519.Ed25519PrivateKey.generate()
    issuer_key = ed25519.Ed25519PrivateKey.generate()
    root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain)])
    issuer_name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, sentry_spiffe_id(trust_domain, namespace))]
    )
    root = _ca_certificate(
        root_name, root_name, root_key.public_key(), root_key, crl_sign=False, now=now, skew=skew
    )
    issuer = _ca_certificate(
        issuer_name, root_name, issuer_key.public_key(), root_key, crl_sign=True, now=now, skew=skew
    )
    return TrustBundle.build([root], [issuer], issuer_key)


# -- bring your own ------------------------------------------------------------------------------


def _signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Go's ``CheckSignatureFrom``: the parent must be a CA allowed to sign certificates."""
    try:
        constraints = parent.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if parent.version == x509.Version.v3 and (constraints is None or not constraints.ca):
        return False
    try:
        usage = parent.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _valid_for_signing(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    try:
        cert_sign = certificate.extensions.get_extension_for_class(
            x509.KeyUsage
        ).value.key_cert_sign
    except x509.ExtensionNotFound:
        cert_sign = False
    # Dapr's check fails only when all three are missing.
    return constraints is not None or cert_sign


def _go_time(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_time(certificate: x509.Certificate, now: datetime.datetime) -> None:
    if now < certificate.not_valid_before_utc:
        raise BundleError(
            "x509: certificate has expired or is not yet valid: current time "
            f"{_go_time(now)} is before {_go_time(certificate.not_valid_before_utc)}"
        )
    if now > certificate.not_valid_after_utc:
        raise BundleError(
            "x509: certificate has expired or is not yet valid: current time "
            f"{_go_time(now)} is after {_go_time(certificate.not_valid_after_utc)}"
        )


def _check_server_auth(certificate: x509.Certificate) -> None:
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    allowed = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
    if not allowed.intersection(usages):
        raise BundleError("x509: certificate specifies an incompatible key usage")


def _verify_to_anchors(
    chain: list[x509.Certificate], anchors: list[x509.Certificate], now: datetime.datetime
) -> None:
    """Go's ``Certificate.Verify`` with the default EKU (serverAuth), for a chain given in order."""
    for certificate in chain:
        _check_time(certificate, now)
        _check_server_auth(certificate)
    last = chain[-1]
    for anchor in anchors:
        if _signed_by(last, anchor):
            _check_time(anchor, now)
            _check_server_auth(anchor)
            return
    raise BundleError("x509: certificate signed by unknown authority")


def verify(
    ca_pem: bytes, issuer_pem: bytes, key_pem: bytes, now: datetime.datetime | None = None
) -> TrustBundle:
    """Dapr's ``verifyX509Bundle``: check the operator's bundle and return it normalised."""
    now = now or datetime.datetime.now(datetime.UTC)
    try:
        anchors = pem.decode_certificates(ca_pem)
    except PemError as error:
        raise BundleError(f"failed to decode trust anchors: {error}") from None
    for anchor in anchors:
        if not _signed_by(anchor, anchor):
            raise BundleError("certificate in trust anchor is not self-signed")
    try:
        chain = pem.decode_certificates(issuer_pem)
    except PemError as error:
        raise BundleError(f"failed to decode issuer certificate chain: {error}") from None
    for child, parent in itertools.pairwise(chain):
        if not _signed_by(child, parent):
            raise BundleError("certificate chain is not valid")
    if len(chain) > 1 and _signed_by(chain[-1], chain[-1]):
        chain = chain[:-1]
    if not _valid_for_signing(chain[0]):
        raise BundleError("issuer certificate is not valid for signing")
    try:
        key = pem.decode_private_key(key_pem)
    except PemError as error:
        raise BundleError(f"failed to decode issuer key: {error}") from None
    if _public_der(key.public_key()) != _public_der(chain[0].public_key()):
        raise BundleError("issuer key does not match issuer certificate")
    try:
        _verify_to_anchors(chain, anchors, now)
    except BundleError as error:
        raise BundleError(f"issuer chain does not belong to trust anchors: {error}") from None
    return TrustBundle.build(anchors, chain, key)


def _public_der(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
