"""Dapr's CustomResourceDefinitions from ``deploy/crds/``, loaded and installed for tests.

``deploy/crds/`` holds the manifests a cluster gets, so tests install exactly those rather than
copies. :func:`install_crds` is called from fixtures of many test modules against one session
cluster, so it skips CRDs that are already installed in the same form: each installed CRD
carries the digest of its manifest in an annotation, and a CRD whose digest matches and that is
Established is left alone (a few GETs, no writes). That also keeps what an operator patched
into the Subscription CRD's conversion stanza (its namespace and caBundle) across calls.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.k8s.cluster import raw_request

REPO_ROOT = Path(__file__).resolve().parents[3]
CRDS_DIR = REPO_ROOT / "deploy" / "crds"
#: Digest of the manifest a CRD was installed from; tells a current CRD from an outdated one.
DIGEST_ANNOTATION = "test.daprplane.io/manifest-sha256"
ESTABLISH_TIMEOUT = 30.0

_CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def crd_documents() -> list[dict[str, Any]]:
    """Every document of every ``deploy/crds/*.yaml``, in file-name order."""
    documents: list[dict[str, Any]] = []
    for path in sorted(CRDS_DIR.glob("*.yaml")):
        with path.open() as stream:
            documents.extend(doc for doc in yaml.safe_load_all(stream) if doc)
    return documents


def manifest_digest(document: dict[str, Any]) -> str:
    """A digest of the manifest's content, independent of key order and YAML layout."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def install_crds(api: Any) -> None:
    """Create or update every CRD of ``deploy/crds/`` and wait until all are Established.

    ``api`` is a sync admin ``kubernetes.client.ApiClient``. An existing CRD is replaced
    (keeping its live resourceVersion) unless it was installed from the same manifest.
    """
    applied = [_apply(api, document) for document in crd_documents()]
    pending = [name for name, current in applied if not current]
    deadline = time.monotonic() + ESTABLISH_TIMEOUT
    for name in pending:
        while not _established(_read(api, name)):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"CRD {name} not Established after {ESTABLISH_TIMEOUT:.0f}s: {_read(api, name)}"
                )
            time.sleep(0.05)


def _apply(api: Any, document: dict[str, Any]) -> tuple[str, bool]:
    """Create or replace the CRD unless it is current; return its name and whether it is
    already current and Established (nothing to wait for)."""
    name: str = document["metadata"]["name"]
    digest = manifest_digest(document)
    body = json.loads(json.dumps(document))  # a deep copy we may annotate
    body["metadata"].setdefault("annotations", {})[DIGEST_ANNOTATION] = digest
    live = _read(api, name)
    if live is None:
        try:
            raw_request(api, "POST", _CRD_PATH, body=body)
            return name, False
        except client.ApiException as error:
            if error.status != 409:  # someone created it meanwhile: replace below
                raise
            live = _read(api, name)
            assert live is not None
    annotations = live["metadata"].get("annotations") or {}
    if annotations.get(DIGEST_ANNOTATION) == digest:
        return name, _established(live)
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    raw_request(api, "PUT", f"{_CRD_PATH}/{name}", body=body)
    return name, False


def _read(api: Any, name: str) -> dict[str, Any] | None:
    try:
        crd: dict[str, Any] = raw_request(api, "GET", f"{_CRD_PATH}/{name}")
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return crd


def _established(crd: dict[str, Any] | None) -> bool:
    if crd is None:
        return False
    conditions = {c["type"]: c["status"] for c in crd.get("status", {}).get("conditions") or []}
    return conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True"
