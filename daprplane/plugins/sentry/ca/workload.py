"""Workload X.509-SVIDs, shaped as Dapr's ``bundle.GenerateWorkloadCert`` shapes them."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from daprplane.core.security.spiffe import SpiffeId
from daprplane.plugins.sentry.ca.bundle import TrustBundle, random_serial
from daprplane.plugins.sentry.ca.pem import PrivateKey

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_DIGITAL_SIGNATURE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
_SERVER_AND_CLIENT_AUTH = x509.ExtendedKeyUsage(
    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
)


def signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    """The hash Go picks for a signing key (``signingParamsForKey``)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = key.curve.key_size
        return hashes.SHA512() if size > 384 else hashes.SHA384() if size > 256 else hashes.SHA256()
    return hashes.SHA256()


class _IssuerTemplate:
    """What every leaf of one issuer shares: issuer name, KU, EKU and AKID already added (the
    builder is immutable, so each request extends it), and the signature hash."""

    def __init__(self, issuer: x509.Certificate, issuer_key: PrivateKey) -> None:
        self.issuer = issuer
        self.issuer_key = issuer_key
        self.algorithm = signature_hash(issuer_key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(issuer.subject)
            .add_extension(_DIGITAL_SIGNATURE, critical=True)
            .add_extension(_SERVER_AND_CLIENT_AUTH, critical=False)
        )
        try:
            skid = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier(skid.digest, None, None), critical=False
            )
        except x509.ExtensionNotFound:
            pass
        self.builder = builder


# The template of the issuer signed with last: sentry signs with one CA until it is reloaded.
_last_template: _IssuerTemplate | None = None


def _template(bundle: TrustBundle) -> _IssuerTemplate:
    global _last_template
    template = _last_template
    # Identity, not equality: a reloaded bundle brings new objects, and comparing is free.
    if (
        template is None
        or template.issuer is not bundle.issuer
        or template.issuer_key is not bundle.issuer_key
    ):
        template = _last_template = _IssuerTemplate(bundle.issuer, bundle.issuer_key)
    return template


def sign_workload(
    bundle: TrustBundle,
    public_key: PublicKey,
    spiffe_id: SpiffeId,
    *,
    ttl: timedelta,
    skew: timedelta,
    dns_names: Sequence[str] = (),
    extensions: Sequence[x509.ExtensionType] = (),
    now: datetime.datetime | None = None,
) -> x509.Certificate:
    """Sign a leaf for ``spiffe_id``: empty subject, one URI SAN (critical), KU digitalSignature,
    EKU server+client auth, AKID = issuer SKID, valid from ``now - skew`` to ``now + ttl``.

    ``extensions`` are added non-critical after Dapr's own (the Kubernetes images extension).
    """
    now = now or datetime.datetime.now(datetime.UTC)
    template = _template(bundle)
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    # Go writes DNS names before URIs in the SAN sequence.
    names.append(x509.UniformResourceIdentifier(str(spiffe_id)))
    builder = (
        template.builder.public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(now - skew)
        .not_valid_after(now + ttl)
        # An empty subject makes the SAN extension critical (RFC 5280 4.2.1.6), as Go does.
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(template.issuer_key, algorithm=template.algorithm)
