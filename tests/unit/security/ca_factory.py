"""A throwaway Dapr-shaped CA for tests: Ed25519 root and issuer, SVID leaves like Sentry's."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from daprplane.core.security.anchors import TrustBundle
from daprplane.core.security.svid import Svid


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _usage(*, sign: bool = False, cert_sign: bool = False, crl_sign: bool = False) -> x509.KeyUsage:
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


def _sign(builder: x509.CertificateBuilder, key: object) -> x509.Certificate:
    algorithm = hashes.SHA256() if isinstance(key, rsa.RSAPrivateKey) else None
    return builder.sign(key, algorithm)  # type: ignore[arg-type]


class CertificateAuthority:
    def __init__(
        self,
        trust_domain: str = "localhost",
        namespace: str = "default",
        *,
        issuer_akid: bool = False,
    ) -> None:
        """Like Sentry's generated CA: the issuer has no AuthorityKeyIdentifier unless
        ``issuer_akid`` (bring-your-own CAs usually have one)."""
        now = datetime.now(UTC)
        self.root_key = ed25519.Ed25519PrivateKey.generate()
        root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain)])
        self.root = _sign(
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(self.root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=15))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(sign=True, cert_sign=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.root_key.public_key()),
                critical=False,
            ),
            self.root_key,
        )
        self.issuer_key = ed25519.Ed25519PrivateKey.generate()
        issuer_name = x509.Name(
            [
                x509.NameAttribute(
                    NameOID.ORGANIZATION_NAME, f"spiffe://{trust_domain}/ns/{namespace}/dapr-sentry"
                )
            ]
        )
        root_skid = x509.SubjectKeyIdentifier.from_public_key(self.root_key.public_key())
        issuer = (
            x509.CertificateBuilder()
            .subject_name(issuer_name)
            .issuer_name(root_name)
            .public_key(self.issuer_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=15))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(sign=True, cert_sign=True, crl_sign=True), critical=True)
        )
        if issuer_akid:
            issuer = issuer.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_skid),
                critical=False,
            )
        self.issuer = _sign(issuer, self.root_key)

    @property
    def bundle(self) -> TrustBundle:
        return TrustBundle((self.root,))

    @property
    def anchors_pem(self) -> bytes:
        return pem(self.root)

    def leaf(
        self,
        uris: Sequence[str],
        public_key: object,
        *,
        ttl: timedelta = timedelta(hours=1),
        skew: timedelta = timedelta(0),
        dns: Sequence[str] = (),
        ca: bool = False,
        cert_sign: bool = False,
    ) -> x509.Certificate:
        now = datetime.now(UTC)
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
        names += [x509.DNSName(d) for d in dns]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.issuer.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - skew)
            .not_valid_after(now + ttl)
            .add_extension(_usage(sign=True, cert_sign=cert_sign), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=True)
        if ca:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        return _sign(builder, self.issuer_key)

    def svid(
        self,
        spiffe_id: str,
        *,
        ttl: timedelta = timedelta(hours=1),
        key: object = None,
        skew: timedelta = timedelta(0),
    ) -> Svid:
        key = key or ed25519.Ed25519PrivateKey.generate()
        leaf = self.leaf([spiffe_id], key.public_key(), ttl=ttl, skew=skew)  # type: ignore[attr-defined]
        return Svid.from_chain((leaf, self.issuer), key)  # type: ignore[arg-type]

    def raw_pair(self, uris: Sequence[str], **options: object) -> tuple[bytes, bytes]:
        """(chain PEM, key PEM) of a leaf that need not be a valid SVID."""
        key = ed25519.Ed25519PrivateKey.generate()
        leaf = self.leaf(uris, key.public_key(), **options)  # type: ignore[arg-type]
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return pem(leaf, self.issuer), key_pem
