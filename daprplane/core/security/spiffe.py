"""SPIFFE IDs as Dapr uses them: ``spiffe://<trust-domain>/ns/<namespace>/<app-id>``.

The character rules are go-spiffe's (``spiffeid``): a trust domain is lowercase letters, digits,
``.``, ``-`` and ``_``; a path segment is letters, digits, ``.``, ``-`` and ``_``, non-empty and
neither ``.`` nor ``..``. Dapr's own reading of the path (``/ns/<ns>/<app>[/...]``) is stricter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # cryptography loads with the first certificate, not with the ID parser
    from cryptography import x509

SCHEME = "spiffe://"
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


class SpiffeIdError(ValueError):
    """Text or a certificate that does not carry a usable SPIFFE ID."""


def validate_trust_domain(trust_domain: str) -> str:
    if not trust_domain:
        raise SpiffeIdError("trust domain is missing")
    if not _TRUST_DOMAIN.fullmatch(trust_domain):
        raise SpiffeIdError(
            "trust domain characters are limited to lowercase letters, numbers, dots, dashes, "
            "and underscores"
        )
    return trust_domain


def trust_domain_from_string(value: str) -> str:
    """``spiffeid.TrustDomainFromString``: a bare trust domain, or any SPIFFE ID's domain."""
    if value.startswith(SCHEME):
        return parse(value).trust_domain
    return validate_trust_domain(value)


def validate_segment(segment: str) -> str:
    if not segment:
        raise SpiffeIdError("path cannot contain empty segments")
    if segment in (".", ".."):
        raise SpiffeIdError("path cannot contain dot segments")
    if not _SEGMENT.fullmatch(segment):
        raise SpiffeIdError(
            "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
        )
    return segment


@dataclass(frozen=True, order=True)
class SpiffeId:
    """A parsed SPIFFE ID; ``namespace`` and ``app_id`` are set when the path is Dapr-shaped."""

    trust_domain: str
    path: str

    @classmethod
    def for_app(cls, trust_domain: str, namespace: str, app_id: str) -> SpiffeId:
        """``spiffe://<td>/ns/<namespace>/<app_id>``, every part validated."""
        validate_trust_domain(trust_domain)
        for segment in (namespace, app_id):
            validate_segment(segment)
        return cls(trust_domain, f"/ns/{namespace}/{app_id}")

    @property
    def _dapr_parts(self) -> list[str] | None:
        parts = self.path.split("/")
        if len(parts) < 4 or parts[1] != "ns" or not parts[2] or not parts[3]:
            return None
        return parts

    @property
    def namespace(self) -> str | None:
        parts = self._dapr_parts
        return parts[2] if parts else None

    @property
    def app_id(self) -> str | None:
        parts = self._dapr_parts
        return parts[3] if parts else None

    def __str__(self) -> str:
        return f"{SCHEME}{self.trust_domain}{self.path}"


def parse(text: str) -> SpiffeId:
    if not text.startswith(SCHEME):
        raise SpiffeIdError("scheme is missing or invalid")
    rest = text[len(SCHEME) :]
    trust_domain, slash, path = rest.partition("/")
    validate_trust_domain(trust_domain)
    path = slash + path
    if path:
        for segment in path.split("/")[1:]:
            validate_segment(segment)
    return SpiffeId(trust_domain, path)


def parse_dapr(text: str) -> SpiffeId:
    """A SPIFFE ID whose path is ``/ns/<namespace>/<app-id>[/...]``, as Dapr's peers must have."""
    spiffe_id = parse(text)
    if spiffe_id.app_id is None:
        raise SpiffeIdError(f"invalid SPIFFE ID path: {spiffe_id.path!r}")
    return spiffe_id


def from_certificate(certificate: x509.Certificate) -> SpiffeId:
    """The SPIFFE ID of an X.509-SVID: exactly one URI SAN, and it must be a SPIFFE ID."""
    from cryptography import x509

    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        raise SpiffeIdError("certificate contains no URI SAN") from None
    uris = extension.value.get_values_for_type(x509.UniformResourceIdentifier)
    if not uris:
        raise SpiffeIdError("certificate contains no URI SAN")
    if len(uris) > 1:
        raise SpiffeIdError("certificate contains more than one URI SAN")
    return parse(uris[0])
