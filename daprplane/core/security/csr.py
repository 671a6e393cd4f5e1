"""Private keys and certificate signing requests as Dapr's clients send them to Sentry.

daprd generates a fresh Ed25519 key for every certificate; the injector and the operator use
RSA-2048 (their webhook clients, the Kubernetes API server, may not accept Ed25519). The CSR has
an empty subject: Sentry reads only its public key and its self-signature.
"""

from __future__ import annotations

import enum

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


class KeyAlgorithm(enum.Enum):
    ED25519 = "ed25519"
    RSA = "rsa"


def generate_key(algorithm: KeyAlgorithm = KeyAlgorithm.ED25519) -> PrivateKey:
    if algorithm is KeyAlgorithm.RSA:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


def create_csr(key: PrivateKey) -> bytes:
    """A PEM ``CERTIFICATE REQUEST`` with an empty subject, signed by ``key``."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    algorithm = hashes.SHA256() if isinstance(key, rsa.RSAPrivateKey) else None
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 ``PRIVATE KEY`` PEM, unencrypted (it only ever lives in memory)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
