"""X.509-SVIDs: a SPIFFE identity's certificate chain and private key, and the leaf rules.

The rules are go-spiffe's (``x509svid``), which Dapr applies to every peer and to what Sentry
returns: the leaf carries exactly one URI SAN and it is a SPIFFE ID; the leaf is not a CA and
cannot sign certificates or CRLs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from daprplane.core.security import spiffe
from daprplane.core.security.spiffe import SpiffeId


class SvidError(ValueError):
    """A certificate (chain) that is not a usable X.509-SVID."""


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def verify_leaf(certificate: x509.Certificate) -> SpiffeId:
    """The SPIFFE ID of an X.509-SVID leaf, or :class:`SvidError` saying why it is not one."""
    try:
        spiffe_id = spiffe.from_certificate(certificate)
        extensions = certificate.extensions
    except ValueError as error:  # SpiffeIdError, or extensions cryptography cannot parse
        raise SvidError(f"certificate is not a valid X.509-SVID: {error}") from None
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise SvidError("leaf certificate must not have CA flag set to true")
    except x509.ExtensionNotFound:
        pass
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        pass
    else:
        if usage.key_cert_sign:
            raise SvidError("leaf certificate must not have 'keyCertSign' as key usage")
        if usage.crl_sign:
            raise SvidError("leaf certificate must not have 'cRLSign' as key usage")
    return spiffe_id


def load_pem_chain(data: bytes) -> tuple[x509.Certificate, ...]:
    """Every ``CERTIFICATE`` block of ``data``, leaf first; at least one."""
    try:
        return tuple(x509.load_pem_x509_certificates(data))
    except (ValueError, x509.InvalidVersion) as error:
        raise SvidError(f"failed to parse certificate chain: {error}") from None


@dataclass(frozen=True)
class Svid:
    """A workload identity: ``certificates[0]`` is the leaf, the rest its intermediates."""

    spiffe_id: SpiffeId
    certificates: tuple[x509.Certificate, ...]
    private_key: PrivateKeyTypes

    @classmethod
    def from_chain(
        cls, certificates: Sequence[x509.Certificate], private_key: PrivateKeyTypes
    ) -> Svid:
        if not certificates:
            raise SvidError("certificate chain is empty")
        leaf = certificates[0]
        spiffe_id = verify_leaf(leaf)
        try:
            leaf_key = _public_der(leaf.public_key())
        except (ValueError, UnsupportedAlgorithm) as error:
            raise SvidError(f"unusable leaf public key: {error}") from None
        if leaf_key != _public_der(private_key.public_key()):
            raise SvidError("leaf certificate does not match the private key")
        return cls(spiffe_id, tuple(certificates), private_key)

    @classmethod
    def from_pem(cls, chain_pem: bytes, key_pem: bytes) -> Svid:
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as error:
            raise SvidError(f"failed to parse private key: {error}") from None
        return cls.from_chain(load_pem_chain(chain_pem), key)

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def not_before(self) -> datetime:
        return self.leaf.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        return self.leaf.not_valid_after_utc

    @property
    def renew_at(self) -> datetime:
        """Half-life: Dapr renews at NotBefore + (NotAfter - NotBefore) / 2."""
        return self.not_before + (self.not_after - self.not_before) / 2

    @property
    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certificates)

    @property
    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
