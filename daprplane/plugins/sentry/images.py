"""The container-images certificate extension of the Kubernetes validator.

A workload certificate tells what runs in the pod it was issued to: a non-critical extension
(OID ``1.3.6.1.4.1.57683.100.1``) whose value is a DER OCTET STRING holding the JSON array
``[{"role":"daprd"|"app","containerName":…,"image":…,"digest":…}]``. Native sidecars (init
containers with ``restartPolicy: Always``) come first, then the regular containers; the role is
``daprd`` for the container named ``daprd``. The digest is the part of ``status.imageID`` after
the last ``@`` (or the whole ID when it is a bare ``sha256:…``), and is left out when unknown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptography import x509

IMAGES_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57683.100.1")
DAPRD_CONTAINER = "daprd"


def _digest(image_id: str) -> str:
    if "@" in image_id:
        return image_id.rsplit("@", 1)[1]
    if image_id.startswith("sha256:"):
        return image_id
    return ""


def _image_ids(statuses: Any) -> dict[str, str]:
    ids: dict[str, str] = {}
    for status in statuses or []:
        if isinstance(status, Mapping) and status.get("name"):
            ids[str(status["name"])] = str(status.get("imageID") or "")
    return ids


def _entry(container: Mapping[str, Any], image_ids: Mapping[str, str]) -> dict[str, str]:
    name = str(container.get("name") or "")
    entry = {
        "role": "daprd" if name == DAPRD_CONTAINER else "app",
        "containerName": name,
        "image": str(container.get("image") or ""),
    }
    digest = _digest(image_ids.get(name, ""))
    if digest:
        entry["digest"] = digest
    return entry


def container_images(pod: Mapping[str, Any]) -> list[dict[str, str]]:
    """The extension's entries for ``pod`` (a JSON pod object), in Dapr's order."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    init_ids = _image_ids(status.get("initContainerStatuses"))
    ids = _image_ids(status.get("containerStatuses"))
    entries = [
        _entry(container, init_ids)
        for container in spec.get("initContainers") or []
        if isinstance(container, Mapping) and container.get("restartPolicy") == "Always"
    ]
    entries += [
        _entry(container, ids)
        for container in spec.get("containers") or []
        if isinstance(container, Mapping)
    ]
    return entries


def go_json(value: Any) -> bytes:
    """``encoding/json.Marshal`` output: compact, UTF-8, with Go's HTML-safe escapes."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text.encode()


def der_octet_string(data: bytes) -> bytes:
    # A primitive OCTET STRING: no ASN.1 library is needed for one tag and a length.
    length = len(data)
    if length < 0x80:
        header = bytes([length])
    else:
        encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
        header = bytes([0x80 | len(encoded)]) + encoded
    return b"\x04" + header + data


def images_extension(pod: Mapping[str, Any]) -> x509.UnrecognizedExtension | None:
    """The extension for ``pod``, or ``None`` when the pod lists no containers."""
    entries = container_images(pod)
    if not entries:
        return None
    return x509.UnrecognizedExtension(IMAGES_OID, der_octet_string(go_json(entries)))


def parse_images_extension(certificate: x509.Certificate) -> list[dict[str, str]] | None:
    """The entries carried by ``certificate``, or ``None`` without the extension."""
    try:
        extension = certificate.extensions.get_extension_for_oid(IMAGES_OID)
    except x509.ExtensionNotFound:
        return None
    value = extension.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    if len(raw) < 2 or raw[0] != 0x04:
        raise ValueError("images extension is not an OCTET STRING")
    start = 2 if raw[1] < 0x80 else 2 + (raw[1] & 0x7F)
    result: list[dict[str, str]] = json.loads(raw[start:])
    return result
