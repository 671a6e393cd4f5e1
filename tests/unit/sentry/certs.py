"""Certificates, keys and CSRs built for tests."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.UTC)


def key(kind: str = "ed25519"):  # type: ignore[no-untyped-def]
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def _hash(signer):  # type: ignore[no-untyped-def]
    return None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def csr_pem(private_key=None, block_type: str = "CERTIFICATE REQUEST") -> bytes:  # type: ignore[no-untyped-def]
    private_key = private_key or key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(private_key, _hash(private_key))
    )
    der = csr.public_bytes(serialization.Encoding.DER)
    from daprplane.plugins.sentry.ca import pem

    return pem.encode(block_type, der)


def ca_cert(
    name: str,
    subject_key,  # type: ignore[no-untyped-def]
    signer=None,  # type: ignore[no-untyped-def]
    issuer: x509.Certificate | None = None,
    *,
    ca: bool = True,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
    basic_constraints: bool = True,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(hours=1))
        .not_valid_after(not_after or NOW + timedelta(days=30))
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, ca, ca, False, False), critical=True
        )
    )
    if basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=None), critical=True
        )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    signer = signer or subject_key
    return builder.sign(signer, _hash(signer))


def pem_of(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def key_pem(private_key, fmt=serialization.PrivateFormat.PKCS8) -> bytes:  # type: ignore[no-untyped-def]
    return private_key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


class Byo:
    """A bring-your-own root + issuer, with every piece at hand for breaking it."""

    def __init__(self, kind: str = "ed25519", **issuer_kwargs) -> None:  # type: ignore[no-untyped-def]
        self.root_key = key(kind)
        self.root = ca_cert("root", self.root_key)
        self.issuer_key = key(kind)
        self.issuer = ca_cert("issuer", self.issuer_key, self.root_key, self.root, **issuer_kwargs)

    @property
    def files(self) -> tuple[bytes, bytes, bytes]:
        return pem_of(self.root), pem_of(self.issuer), key_pem(self.issuer_key)


SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
