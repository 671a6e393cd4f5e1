"""PEM reading and writing as Go's ``encoding/pem`` and dapr/kit's ``crypto/pem`` do.

Written by hand because the semantics are kit's, not OpenSSL's: certificate decoding stops at
the first block that is not a ``CERTIFICATE``, text around blocks is ignored, and chains are
re-encoded without self-signed certificates.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

_BLOCK = re.compile(rb"-----BEGIN ([^\r\n-]*)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


class PemError(ValueError):
    """PEM text that does not hold what it should."""


@dataclass(frozen=True)
class Block:
    type: str
    der: bytes


def blocks(data: bytes) -> Iterator[Block]:
    """Every well-formed PEM block in ``data``, in order; other text is skipped (``pem.Decode``)."""
    for match in _BLOCK.finditer(data):
        body = match.group(2)
        # Go accepts RFC 1421 headers ("Key: value" lines before a blank line) and skips them.
        if b":" in body.split(b"\n", 1)[0]:
            _, _, body = body.partition(b"\n\n")
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            continue
        yield Block(match.group(1).decode("latin-1"), der)


def encode(block_type: str, der: bytes) -> bytes:
    """One PEM block with 64-column base64 and ``\\n`` line ends, as Go's ``pem.Encode``."""
    text = base64.b64encode(der)
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    head = f"-----BEGIN {block_type}-----\n".encode()
    tail = f"-----END {block_type}-----\n".encode()
    return head + b"".join(line + b"\n" for line in lines) + tail


def decode_certificates(data: bytes) -> list[x509.Certificate]:
    """kit ``DecodePEMCertificates``: leading CERTIFICATE blocks, at least one."""
    certificates: list[x509.Certificate] = []
    for block in blocks(data):
        if block.type != "CERTIFICATE":
            break
        try:
            certificates.append(x509.load_der_x509_certificate(block.der))
        except (ValueError, x509.InvalidVersion) as error:
            raise PemError(f"failed to parse certificate: {error}") from None
    if not certificates:
        raise PemError("no certificates found")
    return certificates


def decode_private_key(data: bytes) -> PrivateKey:
    """kit ``DecodePEMPrivateKey``: the first block, as SEC1 EC, PKCS#1 RSA or PKCS#8."""
    block = next(blocks(data), None)
    if block is None:
        raise PemError("no PEM data found")
    if block.type not in ("EC PRIVATE KEY", "RSA PRIVATE KEY", "PRIVATE KEY"):
        raise PemError(f"unsupported block type {block.type!r}")
    try:
        key = serialization.load_der_private_key(block.der, password=None)
    except (ValueError, TypeError) as error:
        raise PemError(f"failed to parse private key: {error}") from None
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise PemError(f"unsupported private key type {type(key).__name__}")
    return key


def encode_private_key(key: PrivateKey) -> bytes:
    """PKCS#8 ``PRIVATE KEY``, whatever form the key was read in."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return encode("PRIVATE KEY", der)


def is_self_signed(certificate: x509.Certificate) -> bool:
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, Exception):  # InvalidSignature is not a ValueError
        return False
    return True


def encode_certificates(certificates: Iterable[x509.Certificate]) -> bytes:
    """Every certificate, self-signed ones included (trust anchors)."""
    return b"".join(
        encode("CERTIFICATE", c.public_bytes(serialization.Encoding.DER)) for c in certificates
    )


def encode_chain(certificates: Iterable[x509.Certificate]) -> bytes:
    """kit ``EncodeX509Chain``: a chain without its self-signed certificates."""
    return encode_certificates(c for c in certificates if not is_self_signed(c))
