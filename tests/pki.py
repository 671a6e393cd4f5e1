"""Keys, certificates and CSRs for tests: the one place a test PKI is built.

:func:`certificate` makes any certificate from a few keyword arguments, :func:`csr_pem` a
certificate signing request, :func:`self_signed` a lone self-signed one. Three authorities
are made from them, one per kind of PKI the tests meet:

- :class:`SentryCA`: shaped like the CA sentry generates (Ed25519 root and issuer) and issuing
  SPIFFE SVIDs as sentry does;
- :class:`ByoCA`: a bring-your-own root and issuer of any key type, every piece at hand for a
  test to break;
- :class:`TlsCA`: a plain CA for the test API server and HTTPS test servers, issuing server
  certificates for DNS names and IP addresses and client certificates with Kubernetes groups.

A test whose point is an odd certificate builds it with :func:`builder` and :func:`sign`, so
that only the oddity is spelled out.
"""

from __future__ import annotations

import base64
import ipaddress
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    # Imported where used at run time, so that the k8s test cluster (it needs only TlsCA)
    # stays free of daprplane imports.
    from daprplane.core.security.anchors import TrustBundle
    from daprplane.core.security.svid import Svid

PrivateKey = CertificateIssuerPrivateKeyTypes

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
#: When this module was loaded: a fixed point for tests that place validity around "now".
NOW = datetime.now(UTC)


# -- keys and encodings ---------------------------------------------------------------------------


def new_key(kind: str = "ed25519") -> PrivateKey:
    """A fresh private key: ``ed25519``, ``ecdsa`` (P-256) or ``rsa`` (2048 bits)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key kind {kind!r}")


def signing_hash(signer: PrivateKey) -> hashes.HashAlgorithm | None:
    """The digest to sign with: none for Ed25519 (it hashes internally), SHA-256 otherwise."""
    return None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def pem_of(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def key_pem(
    key: PrivateKey, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8
) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def pem_block(label: str, der: bytes) -> bytes:
    """``der`` under any PEM label (cryptography writes only the standard ones)."""
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


def csr_pem(key: PrivateKey | None = None, block_type: str = "CERTIFICATE REQUEST") -> bytes:
    """A CSR with an empty subject, as daprd sends, signed by ``key`` (a new Ed25519 one)."""
    key = key or new_key()
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, signing_hash(key))
    )
    return pem_block(block_type, request.public_bytes(serialization.Encoding.DER))


# -- certificates ---------------------------------------------------------------------------------


def name(common_name: str | None = None, *, organizations: Sequence[str] = ()) -> x509.Name:
    """A subject of O values (Kubernetes groups, Dapr's names) and an optional CN."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    if common_name is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def alt_names(
    hosts: Iterable[str] = (), *, uris: Iterable[str] = (), dns: Iterable[str] = ()
) -> list[x509.GeneralName]:
    """SANs: ``hosts`` become IP addresses where they parse as one and DNS names otherwise."""
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    names += [x509.DNSName(d) for d in dns]
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def key_usage(
    *, sign: bool = True, cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def builder(
    public_key: CertificatePublicKeyTypes,
    *,
    subject: x509.Name | None = None,
    issuer: x509.Name | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.CertificateBuilder:
    """A builder with no extensions yet, valid from five minutes ago for an hour; the issuer
    is the subject (self-signed) unless given."""
    now = datetime.now(UTC)
    subject = subject if subject is not None else x509.Name([])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer if issuer is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(minutes=5))
        .not_valid_after(not_after or now + timedelta(hours=1))
    )


def sign(unsigned: x509.CertificateBuilder, signer: PrivateKey) -> x509.Certificate:
    return unsigned.sign(signer, signing_hash(signer))


def certificate(
    public_key: CertificatePublicKeyTypes,
    signer: PrivateKey,
    *,
    subject: x509.Name | None = None,
    issuer: x509.Certificate | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    ca: bool | None = None,
    usage: x509.KeyUsage | None = None,
    extended_usage: Sequence[x509.ObjectIdentifier] | None = None,
    sans: Sequence[x509.GeneralName] = (),
    sans_critical: bool = False,
    subject_key_id: bool = False,
    authority_key_id: bool = False,
) -> x509.Certificate:
    """A certificate for ``public_key`` signed by ``signer``: self-signed unless ``issuer``.

    ``ca`` adds a critical BasicConstraints (``None``: none at all), ``usage`` a critical
    KeyUsage, ``extended_usage`` an ExtendedKeyUsage, ``sans`` the subjectAltNames; the key
    identifiers are added on request (the authority's from the signer's public key)."""
    unsigned = builder(
        public_key,
        subject=subject,
        issuer=issuer.subject if issuer is not None else None,
        not_before=not_before,
        not_after=not_after,
    )
    if ca is not None:
        unsigned = unsigned.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    if usage is not None:
        unsigned = unsigned.add_extension(usage, critical=True)
    if extended_usage is not None:
        unsigned = unsigned.add_extension(x509.ExtendedKeyUsage(list(extended_usage)), False)
    if sans:
        unsigned = unsigned.add_extension(x509.SubjectAlternativeName(sans), sans_critical)
    if subject_key_id:
        unsigned = unsigned.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
            critical=False,
        )
    if authority_key_id:
        unsigned = unsigned.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    return sign(unsigned, signer)


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM (PKCS#8) private key."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write ``<name>.crt`` and ``<name>.key`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        cert = directory / f"{name}.crt"
        key = directory / f"{name}.key"
        cert.write_bytes(self.cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(self.key_pem)
        return cert, key


def self_signed(
    common_name: str, *, hosts: Sequence[str] = (), ca: bool | None = None, kind: str = "ed25519"
) -> KeyPair:
    """A lone self-signed certificate, for ``hosts`` if any."""
    key = new_key(kind)
    cert = certificate(
        key.public_key(), key, subject=name(common_name), sans=alt_names(hosts), ca=ca
    )
    return KeyPair(pem_of(cert), key_pem(key))


# -- authorities ----------------------------------------------------------------------------------


class SentryCA:
    """A CA like the one sentry generates: an Ed25519 root (O=trust domain) and issuer
    (O=sentry's SPIFFE ID), issuing SVIDs shaped like sentry's."""

    def __init__(
        self,
        trust_domain: str = "localhost",
        namespace: str = "default",
        *,
        issuer_akid: bool = False,
    ) -> None:
        """The issuer has no AuthorityKeyIdentifier, as in sentry's own CA, unless
        ``issuer_akid`` (bring-your-own CAs usually have one)."""
        now = datetime.now(UTC)
        validity = {"not_before": now - timedelta(minutes=15), "not_after": now + timedelta(days=1)}
        self.root_key = ed25519.Ed25519PrivateKey.generate()
        self.root = certificate(
            self.root_key.public_key(),
            self.root_key,
            subject=name(organizations=[trust_domain]),
            ca=True,
            usage=key_usage(cert_sign=True),
            subject_key_id=True,
            **validity,
        )
        self.issuer_key = ed25519.Ed25519PrivateKey.generate()
        self.issuer = certificate(
            self.issuer_key.public_key(),
            self.root_key,
            issuer=self.root,
            subject=name(organizations=[f"spiffe://{trust_domain}/ns/{namespace}/dapr-sentry"]),
            ca=True,
            usage=key_usage(cert_sign=True, crl_sign=True),
            authority_key_id=issuer_akid,
            **validity,
        )

    @property
    def bundle(self) -> TrustBundle:
        from daprplane.core.security.anchors import TrustBundle

        return TrustBundle((self.root,))

    @property
    def anchors_pem(self) -> bytes:
        return pem_of(self.root)

    def leaf(
        self,
        uris: Sequence[str],
        public_key: CertificatePublicKeyTypes,
        *,
        ttl: timedelta = timedelta(hours=1),
        skew: timedelta = timedelta(0),
        dns: Sequence[str] = (),
        ca: bool = False,
        cert_sign: bool = False,
    ) -> x509.Certificate:
        """A leaf from the issuer: empty subject, ``uris`` and ``dns`` as critical SANs, valid
        from ``skew`` ago for ``ttl``; ``ca`` and ``cert_sign`` make it one a verifier rejects."""
        now = datetime.now(UTC)
        return certificate(
            public_key,
            self.issuer_key,
            issuer=self.issuer,
            not_before=now - skew,
            not_after=now + ttl,
            ca=True if ca else None,
            usage=key_usage(cert_sign=cert_sign),
            extended_usage=[SERVER_AUTH, CLIENT_AUTH],
            sans=alt_names(uris=uris, dns=dns),
            sans_critical=True,
        )

    def svid(
        self,
        spiffe_id: str,
        *,
        ttl: timedelta = timedelta(hours=1),
        key: PrivateKey | None = None,
        skew: timedelta = timedelta(0),
    ) -> Svid:
        from daprplane.core.security.svid import Svid

        key = key or ed25519.Ed25519PrivateKey.generate()
        leaf = self.leaf([spiffe_id], key.public_key(), ttl=ttl, skew=skew)
        return Svid.from_chain((leaf, self.issuer), key)  # type: ignore[arg-type]

    def raw_pair(self, uris: Sequence[str], **options: object) -> tuple[bytes, bytes]:
        """(chain PEM, key PEM) of a leaf that need not be a valid SVID."""
        key = ed25519.Ed25519PrivateKey.generate()
        leaf = self.leaf(uris, key.public_key(), **options)  # type: ignore[arg-type]
        return pem_of(leaf, self.issuer), key_pem(key)


def byo_ca_cert(
    common_name: str,
    key: PrivateKey,
    signer: PrivateKey | None = None,
    issuer: x509.Certificate | None = None,
    *,
    ca: bool = True,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
    basic_constraints: bool = True,
) -> x509.Certificate:
    """A bring-your-own style CA certificate (O=``common_name``), valid from an hour before
    :data:`NOW` for 30 days; the keywords break it in the ways sentry must notice."""
    return certificate(
        key.public_key(),
        signer or key,
        issuer=issuer,
        subject=name(organizations=[common_name]),
        not_before=not_before or NOW - timedelta(hours=1),
        not_after=not_after or NOW + timedelta(days=30),
        ca=ca if basic_constraints else None,
        usage=key_usage(cert_sign=ca, crl_sign=ca),
        extended_usage=eku,
    )


class ByoCA:
    """A bring-your-own root and issuer of one key kind, with every piece at hand for breaking
    it; ``issuer_options`` go to the issuer's :func:`byo_ca_cert`."""

    def __init__(self, kind: str = "ed25519", **issuer_options: object) -> None:
        self.root_key = new_key(kind)
        self.root = byo_ca_cert("root", self.root_key)
        self.issuer_key = new_key(kind)
        self.issuer = byo_ca_cert(
            "issuer",
            self.issuer_key,
            self.root_key,
            self.root,
            **issuer_options,  # type: ignore[arg-type]
        )

    @property
    def files(self) -> tuple[bytes, bytes, bytes]:
        """``ca.crt``, ``issuer.crt`` and ``issuer.key`` as sentry reads them."""
        return pem_of(self.root), pem_of(self.issuer), key_pem(self.issuer_key)


class TlsCA:
    """A self-signed ECDSA CA for the test API server and HTTPS test servers: two days' validity,
    backdated five minutes for clock skew."""

    VALIDITY = timedelta(days=2)
    BACKDATE = timedelta(minutes=5)

    def __init__(self, common_name: str = "daprplane-test-ca") -> None:
        self.key = new_key("ecdsa")
        now = datetime.now(UTC)
        self.cert = certificate(
            self.key.public_key(),
            self.key,
            subject=name(common_name),
            not_before=now - self.BACKDATE,
            not_after=now + self.VALIDITY,
            ca=True,
            usage=key_usage(cert_sign=True, crl_sign=True),
            subject_key_id=True,
        )

    @property
    def cert_pem(self) -> bytes:
        return pem_of(self.cert)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)

    def issue(
        self,
        common_name: str,
        *,
        organizations: Sequence[str] = (),
        hosts: Sequence[str] = (),
        server: bool = False,
        client: bool = False,
        kind: str = "ecdsa",
    ) -> KeyPair:
        """A leaf with a ``kind`` key: ``organizations`` become the subject's O values
        (Kubernetes groups), ``hosts`` (DNS names or IP addresses) the subjectAltNames."""
        if not (server or client):
            raise ValueError("a certificate needs server=True and/or client=True")
        if server and not hosts:
            raise ValueError("a server certificate needs hosts")
        key = new_key(kind)
        now = datetime.now(UTC)
        cert = certificate(
            key.public_key(),
            self.key,
            issuer=self.cert,
            subject=name(common_name, organizations=organizations),
            not_before=now - self.BACKDATE,
            not_after=now + self.VALIDITY,
            ca=False,
            usage=key_usage(),
            extended_usage=[*([SERVER_AUTH] if server else []), *([CLIENT_AUTH] if client else [])],
            sans=alt_names(hosts),
            subject_key_id=True,
            authority_key_id=True,
        )
        return KeyPair(pem_of(cert), key_pem(key))

    def server_cert(self, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> KeyPair:
        return self.issue(hosts[0], hosts=hosts, server=True)

    def client_cert(self, user: str, groups: Sequence[str] = ()) -> KeyPair:
        return self.issue(user, organizations=groups, client=True)


def service_account_signing_key() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a fresh RSA key for ServiceAccount tokens, RSA as on most
    real clusters."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key_pem(key), public
