"""Create rendered objects on the test API server, as ``helm install`` would, without kubectl.

Each object goes to its collection with a plain create (POST); the collection path and whether
the kind is namespaced come from the API server's discovery documents, so any kind the server
serves works. CRDs are created first, as helm installs ``crds/`` before the templates, and like
helm an existing CRD is left as it is.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.k8s.cluster import raw_request

CRD_COLLECTION = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
ESTABLISH_TIMEOUT = 30.0


@dataclass(frozen=True)
class Collection:
    path: str  # without the namespace part
    namespaced: bool

    def of(self, namespace: str | None) -> str:
        if not self.namespaced:
            return self.path
        prefix, _, plural = self.path.rpartition("/")
        return f"{prefix}/namespaces/{namespace}/{plural}"


@dataclass(frozen=True)
class Created:
    """An object the server created: where it lives, and the server's copy."""

    path: str  # the object's own URL path
    namespaced: bool
    body: dict[str, Any]


class Discovery:
    """Maps ``(apiVersion, kind)`` to its collection, reading discovery once per group."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self._by_version: dict[str, dict[str, Collection]] = {}

    def collection(self, api_version: str, kind: str) -> Collection:
        if api_version not in self._by_version:
            base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            listing = raw_request(self.api, "GET", base)
            self._by_version[api_version] = {
                resource["kind"]: Collection(f"{base}/{resource['name']}", resource["namespaced"])
                for resource in listing.get("resources", [])
                if "/" not in resource["name"]  # subresources share the kind
            }
        kinds = self._by_version[api_version]
        if kind not in kinds:
            raise LookupError(f"the API server does not serve {kind} in {api_version}")
        return kinds[kind]


def create_into(api: Any, documents: Iterable[Mapping[str, Any]], created: list[Created]) -> None:
    """POST every document, appending each created object to ``created`` as it goes."""
    discovery = Discovery(api)
    for document in documents:
        collection = discovery.collection(document["apiVersion"], document["kind"])
        namespace = document["metadata"].get("namespace")
        if collection.namespaced and not namespace:
            raise ValueError(f"{document['kind']} {document['metadata']['name']} has no namespace")
        path = collection.of(namespace)
        body = raw_request(api, "POST", path, body=dict(document))
        created.append(Created(f"{path}/{body['metadata']['name']}", collection.namespaced, body))


def delete_cluster_scoped(api: Any, created: Iterable[Created]) -> None:
    """Delete the cluster-scoped objects of ``created`` (namespaced ones go with the namespace)."""
    from kubernetes import client

    for item in created:
        if item.namespaced:
            continue
        try:
            raw_request(api, "DELETE", item.path)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def crd_documents(directory: Path) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        with path.open() as stream:
            documents.extend(doc for doc in yaml.safe_load_all(stream) if doc)
    return documents


def ensure_crds(api: Any, directory: Path) -> list[str]:
    """Create the CRDs of ``directory`` that do not exist yet; wait until all are Established.

    Existing CRDs are left untouched, as helm does: other tests share them, and an operator
    may have patched the Subscription CRD's conversion settings.
    """
    from kubernetes import client

    names: list[str] = []
    for document in crd_documents(directory):
        assert document["kind"] == "CustomResourceDefinition", document["kind"]
        try:
            raw_request(api, "POST", CRD_COLLECTION, body=document)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        names.append(document["metadata"]["name"])
    deadline = time.monotonic() + ESTABLISH_TIMEOUT
    for name in names:
        while not _established(raw_request(api, "GET", f"{CRD_COLLECTION}/{name}")):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {ESTABLISH_TIMEOUT}s")
            time.sleep(0.1)
    return names


def _established(crd: Mapping[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in crd.get("status", {}).get("conditions", [])}
    return conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True"


def can(api: Any, user: str, groups: list[str], **attributes: str) -> bool:
    """Whether ``user`` may do what ``attributes`` describe (a SubjectAccessReview)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
    }
    answer = raw_request(
        api, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=review
    )
    return bool(answer["status"].get("allowed"))
