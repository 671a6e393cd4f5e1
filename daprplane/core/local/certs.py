"""Expiry dates of PEM certificates, for the summaries of ``up`` and ``status``.

``cryptography`` comes with every component's extra, not with the core: without it the dates
are simply not shown.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    not_after: datetime.datetime

    def remaining(self, now: datetime.datetime | None = None) -> datetime.timedelta:
        return self.not_after - (now or datetime.datetime.now(datetime.UTC))


def first_certificate(pem: bytes) -> CertificateInfo | None:
    """The first certificate of ``pem``; ``None`` when it holds none or cannot be read."""
    try:
        from cryptography import x509
    except ImportError:
        return None
    try:
        certificate = x509.load_pem_x509_certificates(pem)[0]
    except (ValueError, IndexError):
        return None
    return CertificateInfo(certificate.subject.rfc4514_string(), certificate.not_valid_after_utc)


def certificate_file(path: Path) -> CertificateInfo | None:
    try:
        return first_certificate(path.read_bytes())
    except OSError:
        return None


def describe_expiry(info: CertificateInfo | None, now: datetime.datetime | None = None) -> str:
    if info is None:
        return "unknown"
    left = info.remaining(now)
    date = info.not_after.strftime("%Y-%m-%d %H:%M UTC")
    if left.total_seconds() <= 0:
        return f"EXPIRED {date}"
    if left.days >= 2:
        return f"{date} (in {left.days} days)"
    if left.total_seconds() >= 2 * 3600:
        return f"{date} (in {int(left.total_seconds() // 3600)} hours)"
    return f"{date} (in {int(left.total_seconds() // 60)} minutes)"
