"""Dapr's CRDs (``deploy/crds/``) are what Dapr 1.18 ships, and the real API server enforces them.

Without a cluster: the seven manifests carry the names, versions, scope and label of Dapr's CRDs,
and every schema is structural. On the test cluster: they install and become Established,
``install_crds`` is idempotent, documented objects of each kind are stored without losing a field,
defaults apply, and objects the schemas forbid are rejected with 422.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client

from tests.integration.operator.crds import (
    CRDS_DIR,
    DIGEST_ANNOTATION,
    crd_documents,
    install_crds,
    manifest_digest,
)
from tests.k8s.cluster import raw_request

GROUP = "dapr.io"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

# file -> (kind, plural, singular, {version: storage})
EXPECTED: dict[str, tuple[str, str, str, dict[str, bool]]] = {
    "components.yaml": ("Component", "components", "component", {"v1alpha1": True}),
    "configuration.yaml": ("Configuration", "configurations", "configuration", {"v1alpha1": True}),
    "subscription.yaml": (
        "Subscription",
        "subscriptions",
        "subscription",
        {"v1alpha1": False, "v2alpha1": True},
    ),
    "resiliency.yaml": ("Resiliency", "resiliencies", "resiliency", {"v1alpha1": True}),
    "httpendpoints.yaml": ("HTTPEndpoint", "httpendpoints", "httpendpoint", {"v1alpha1": True}),
    "mcpservers.yaml": ("MCPServer", "mcpservers", "mcpserver", {"v1alpha1": True}),
    "workflowaccesspolicies.yaml": (
        "WorkflowAccessPolicy",
        "workflowaccesspolicies",
        "workflowaccesspolicy",
        {"v1alpha1": True},
    ),
}
CRD_NAMES = [f"{plural}.{GROUP}" for _, plural, _, _ in EXPECTED.values()]
# Objects are created in each kind's storage version: a v1alpha1 Subscription would need the
# conversion webhook, which does not run here.
CREATE_VERSION = {
    plural: "v2alpha1" if plural == "subscriptions" else "v1alpha1"
    for _, plural, _, _ in EXPECTED.values()
}
TRANSPORTS = ("streamableHTTP", "sse", "stdio")
OPERATIONS = ("schedule", "terminate", "raise", "pause", "resume", "purge", "get", "rerun")


def name_value(name: str, value: Any) -> dict[str, Any]:
    return {"name": name, "value": value}


def secret_ref(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "secretKeyRef": {"name": secret, "key": key}}


def http_transport() -> dict[str, Any]:
    return {
        "url": "https://mcp.example.com/mcp",
        "protocolVersion": "2025-06-18",
        "timeout": "30s",
        "headers": [name_value("x-tenant", "blue"), secret_ref("authorization", "mcp", "token")],
        "auth": {
            "secretStore": "kubernetes",
            "oauth2": {
                "issuer": "https://issuer.example.com/token",
                "audience": "mcp",
                "scopes": ["tools.read", "tools.call"],
                "clientID": "dapr",
                "secretKeyRef": {"name": "oauth", "key": "client-secret"},
            },
            "spiffe": {
                "jwt": {
                    "header": "Authorization",
                    "headerValuePrefix": "Bearer ",
                    "audience": "mcp",
                }
            },
        },
    }


def hook(workflow: str, *, mutate: bool) -> dict[str, Any]:
    return {"workflow": {"workflowName": workflow, "appID": "guard"}, "mutate": mutate}


# One object per kind using the fields Dapr's documentation shows; each must come back unchanged.
VALID: dict[str, dict[str, Any]] = {
    "components": {
        "kind": "Component",
        "auth": {"secretStore": "kubernetes"},
        "scopes": ["checkout", "orders"],
        "spec": {
            "type": "state.redis",
            "version": "v1",
            "ignoreErrors": True,
            "initTimeout": "10s",
            "metadata": [
                name_value("redisHost", "redis:6379"),
                name_value("maxRetries", 3),
                name_value("tls", {"enabled": False, "ciphers": ["a", "b"]}),
                secret_ref("redisPassword", "redis", "password"),
                {"name": "region", "envRef": "REGION"},
            ],
        },
    },
    "configurations": {
        "kind": "Configuration",
        "spec": {
            "httpPipeline": {
                "handlers": [
                    {
                        "name": "oauth2",
                        "type": "middleware.http.oauth2",
                        "selector": {"fields": [{"field": "path", "value": "/api"}]},
                    }
                ]
            },
            "appHttpPipeline": {
                "handlers": [{"name": "upper", "type": "middleware.http.uppercase"}]
            },
            "tracing": {
                "samplingRate": "1",
                "stdout": True,
                "zipkin": {"endpointAddress": "http://zipkin:9411/api/v2/spans"},
                "otel": {
                    "protocol": "grpc",
                    "endpointAddress": "otel:4317",
                    "isSecure": False,
                    "timeout": "10s",
                    "headers": [name_value("x-team", "a"), secret_ref("api-key", "otel", "key")],
                },
            },
            "metric": {
                "enabled": True,
                "recordErrorCodes": True,
                "http": {
                    "increasedCardinality": False,
                    "pathMatching": ["/orders/{id}"],
                    "excludeVerbs": True,
                },
                "rules": [
                    {
                        "name": "dapr_runtime_service_invocation_req_sent_total",
                        "labels": [{"name": "method", "regex": {"orders/": "orders/.+"}}],
                    }
                ],
                "latencyDistributionBuckets": [1, 5, 10, 50, 100],
            },
            "mtls": {
                "enabled": True,
                "workloadCertTTL": "24h",
                "allowedClockSkew": "15m",
                "sentryAddress": "dapr-sentry.dapr-system.svc.cluster.local:443",
                "controlPlaneTrustDomain": "cluster.local",
                "tokenValidators": [{"name": "jwks", "options": {"issuer": "https://i.example"}}],
            },
            "secrets": {
                "scopes": [
                    {
                        "storeName": "kubernetes",
                        "defaultAccess": "deny",
                        "allowedSecrets": ["redis"],
                        "deniedSecrets": ["admin"],
                    }
                ]
            },
            "accessControl": {
                "defaultAction": "deny",
                "trustDomain": "public",
                "policies": [
                    {
                        "appId": "checkout",
                        "defaultAction": "allow",
                        "trustDomain": "public",
                        "namespace": "shop",
                        "operations": [
                            {"name": "/orders/*", "httpVerb": ["POST", "GET"], "action": "deny"}
                        ],
                    }
                ],
            },
            "nameResolution": {
                "component": "kubernetes",
                "version": "v1",
                "configuration": {"clusterDomain": "cluster.local"},
            },
            "features": [{"name": "SchedulerReminders", "enabled": True}],
            "api": {
                "allowed": [{"name": "state", "version": "v1.0", "protocol": "http"}],
                "denied": [{"name": "secrets", "version": "v1.0"}],
            },
            "components": {"deny": ["bindings.smtp"]},
            "logging": {
                "apiLogging": {"enabled": True, "obfuscateURLs": True, "omitHealthChecks": True}
            },
            "wasm": {"strictSandbox": True},
            "workflow": {
                "maxConcurrentWorkflowInvocations": 100,
                "maxConcurrentActivityInvocations": 1000,
                "stateRetentionPolicy": {
                    "anyTerminal": "360h",
                    "completed": "1m",
                    "failed": "720h",
                    "terminated": "360h",
                },
            },
        },
    },
    "subscriptions": {
        "kind": "Subscription",
        "scopes": ["checkout"],
        "spec": {
            "pubsubname": "pubsub",
            "topic": "orders",
            "routes": {
                "rules": [{"match": 'event.type == "order.created"', "path": "/created"}],
                "default": "/orders",
            },
            "metadata": {"rawPayload": "true"},
            "deadLetterTopic": "poison",
            "bulkSubscribe": {"enabled": True, "maxMessagesCount": 100, "maxAwaitDurationMs": 40},
        },
    },
    "resiliencies": {
        "kind": "Resiliency",
        "scopes": ["checkout"],
        "spec": {
            "policies": {
                "timeouts": {"general": "5s", "important": "60s"},
                "retries": {
                    "pubsubRetry": {"policy": "constant", "duration": "5s", "maxRetries": 10},
                    "important": {
                        "policy": "exponential",
                        "maxInterval": "15s",
                        "maxRetries": -1,
                        "matching": {"httpStatusCodes": "500-599", "gRPCStatusCodes": "1-4,8-11"},
                    },
                },
                "circuitBreakers": {
                    "simpleCB": {
                        "maxRequests": 1,
                        "interval": "8s",
                        "timeout": "45s",
                        "trip": "consecutiveFailures > 8",
                    }
                },
            },
            "targets": {
                "apps": {
                    "appB": {
                        "timeout": "general",
                        "retry": "important",
                        "circuitBreaker": "simpleCB",
                        "circuitBreakerCacheSize": 100,
                    }
                },
                "actors": {
                    "myActorType": {
                        "timeout": "general",
                        "retry": "important",
                        "circuitBreaker": "simpleCB",
                        "circuitBreakerScope": "both",
                        "circuitBreakerCacheSize": 5000,
                    }
                },
                "components": {
                    "statestore1": {
                        "outbound": {"timeout": "general", "retry": "pubsubRetry"},
                        "inbound": {"circuitBreaker": "simpleCB"},
                    }
                },
            },
        },
    },
    "httpendpoints": {
        "kind": "HTTPEndpoint",
        "auth": {"secretStore": "kubernetes"},
        "scopes": ["checkout"],
        "spec": {
            "baseUrl": "https://api.example.com",
            "headers": [name_value("Accept-Language", "en-US"), secret_ref("Token", "api", "t")],
            "clientTLS": {
                "rootCA": {"secretKeyRef": {"name": "tls", "key": "ca.crt"}},
                "certificate": {"value": "-----BEGIN CERTIFICATE-----"},
                "privateKey": {"secretKeyRef": {"name": "tls", "key": "tls.key"}},
                "renegotiation": "OnceAsClient",
            },
        },
    },
    "mcpservers": {
        "kind": "MCPServer",
        "scopes": ["agent"],
        "spec": {
            "ignoreErrors": True,
            "endpoint": {"streamableHTTP": http_transport()},
            "catalog": {"description": "weather tools", "tags": ["weather"]},
            "middleware": {
                "beforeCallTool": [hook("redact", mutate=True)],
                "afterCallTool": [hook("audit", mutate=False)],
                "beforeListTools": [hook("filter", mutate=True)],
                "afterListTools": [hook("log", mutate=False)],
            },
        },
    },
    "workflowaccesspolicies": {
        "kind": "WorkflowAccessPolicy",
        "scopes": ["orders"],
        "spec": {
            "rules": [
                {
                    "callers": [{"appID": "checkout"}, {"appID": "billing"}],
                    "workflows": [
                        {
                            "name": "Order*",
                            "operations": list(OPERATIONS),
                            "requires": [
                                {"eventType": "approved", "name": "approval", "appID": "ops"}
                            ],
                        }
                    ],
                    "activities": [{"name": "Charge", "requires": [{"name": "payment"}]}],
                }
            ]
        },
    },
}

# An object of a kind, made invalid by one change, and what the API server's message says.
INVALID: list[tuple[str, str, dict[str, Any], str]] = [
    ("component-without-type", "components", {"spec": {"type": None}}, "spec.type: Required"),
    (
        "component-without-metadata",
        "components",
        {"spec": {"metadata": None}},
        "spec.metadata: Required",
    ),
    (
        "component-metadata-without-name",
        "components",
        {"spec": {"metadata": [{"value": "x"}]}},
        "spec.metadata[0].name: Required",
    ),
    (
        "component-secret-ref-without-name",
        "components",
        {"spec": {"metadata": [{"name": "a", "secretKeyRef": {"key": "k"}}]}},
        "spec.metadata[0].secretKeyRef.name: Required",
    ),
    (
        "component-auth-without-store",
        "components",
        {"auth": {"secretStore": None}},
        "auth.secretStore: Required",
    ),
    (
        "component-ignore-errors-not-bool",
        "components",
        {"spec": {"ignoreErrors": "yes"}},
        "spec.ignoreErrors: Invalid value",
    ),
    (
        "configuration-feature-without-enabled",
        "configurations",
        {"spec": {"features": [{"name": "X"}]}},
        "spec.features[0].enabled: Required",
    ),
    (
        "configuration-metric-without-enabled",
        "configurations",
        {"spec": {"metric": {"enabled": None}}},
        "spec.metric.enabled: Required",
    ),
    (
        "configuration-handler-without-type",
        "configurations",
        {"spec": {"httpPipeline": {"handlers": [{"name": "h"}]}}},
        "spec.httpPipeline.handlers[0].type: Required",
    ),
    (
        "subscription-without-routes",
        "subscriptions",
        {"spec": {"routes": None}},
        "spec.routes: Required",
    ),
    (
        "subscription-rule-without-path",
        "subscriptions",
        {"spec": {"routes": {"rules": [{"match": "true"}]}}},
        "spec.routes.rules[0].path: Required",
    ),
    (
        "subscription-metadata-not-string",
        "subscriptions",
        {"spec": {"metadata": {"rawPayload": True}}},
        "spec.metadata.rawPayload: Invalid value",
    ),
    (
        "resiliency-without-targets",
        "resiliencies",
        {"spec": {"targets": None}},
        "spec.targets: Required",
    ),
    (
        "resiliency-retries-not-integer",
        "resiliencies",
        {"spec": {"policies": {"retries": {"r": {"maxRetries": "ten"}}}}},
        "spec.policies.retries.r.maxRetries: Invalid value",
    ),
    (
        "resiliency-timeout-not-string",
        "resiliencies",
        {"spec": {"policies": {"timeouts": {"general": 5}}}},
        "spec.policies.timeouts.general: Invalid value",
    ),
    (
        "httpendpoint-without-base-url",
        "httpendpoints",
        {"spec": {"baseUrl": None}},
        "spec.baseUrl: Required",
    ),
    (
        "httpendpoint-unknown-renegotiation",
        "httpendpoints",
        {"spec": {"clientTLS": {"renegotiation": "Always"}}},
        'spec.clientTLS.renegotiation: Unsupported value: "Always"',
    ),
    (
        "mcpserver-two-transports",
        "mcpservers",
        {"spec": {"endpoint": {"sse": {"url": "http://x"}}}},
        "exactly one of streamableHTTP, sse, or stdio must be set",
    ),
    (
        "mcpserver-without-endpoint",
        "mcpservers",
        {"spec": {"endpoint": None}},
        "spec.endpoint: Required",
    ),
    (
        "mcpserver-stdio-without-command",
        "mcpservers",
        {"spec": {"endpoint": {"streamableHTTP": None, "stdio": {"args": ["x"]}}}},
        "spec.endpoint.stdio.command: Required",
    ),
    (
        "mcpserver-spiffe-without-audience",
        "mcpservers",
        {
            "spec": {
                "endpoint": {"streamableHTTP": {"auth": {"spiffe": {"jwt": {"audience": None}}}}}
            }
        },
        "spec.endpoint.streamableHTTP.auth.spiffe.jwt.audience: Required",
    ),
    (
        "policy-unknown-operation",
        "workflowaccesspolicies",
        {
            "spec": {
                "rules": [
                    {
                        "callers": [{"appID": "a"}],
                        "workflows": [{"name": "W", "operations": ["schedule", "delete"]}],
                    }
                ]
            }
        },
        'spec.rules[0].workflows[0].operations[1]: Unsupported value: "delete"',
    ),
    (
        "policy-without-callers",
        "workflowaccesspolicies",
        {"spec": {"rules": [{"callers": []}]}},
        "spec.rules[0].callers: Invalid value",
    ),
    (
        "policy-workflow-without-operations",
        "workflowaccesspolicies",
        {"spec": {"rules": [{"callers": [{"appID": "a"}], "workflows": [{"name": "W"}]}]}},
        "spec.rules[0].workflows[0].operations: Required",
    ),
]


def merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``change`` merged in (JSON merge patch: ``None`` deletes a key)."""
    result = copy.deepcopy(base)
    for key, value in change.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def collection(plural: str, namespace: str, version: str | None = None) -> str:
    return f"/apis/{GROUP}/{version or CREATE_VERSION[plural]}/namespaces/{namespace}/{plural}"


def create(api: Any, namespace: str, plural: str, name: str, body: dict[str, Any]) -> Any:
    version = CREATE_VERSION[plural]
    obj = merged(body, {"apiVersion": f"{GROUP}/{version}", "metadata": {"name": name}})
    return raw_request(api, "POST", collection(plural, namespace), body=obj)


def rejection(api: Any, namespace: str, plural: str, name: str, body: dict[str, Any]) -> Any:
    """The API server's error for creating ``body``; fails the test if it was stored."""
    with pytest.raises(client.ApiException) as caught:
        create(api, namespace, plural, name, body)
    return caught.value


def crd_document(file_name: str) -> dict[str, Any]:
    (document,) = [
        doc for doc in crd_documents() if doc["spec"]["names"]["plural"] == EXPECTED[file_name][1]
    ]
    return document


def read_crd(api: Any, name: str) -> Any:
    return raw_request(api, "GET", f"{CRD_PATH}/{name}")


# ------------------------------------------------------------------ the manifests


def test_deploy_crds_holds_exactly_the_seven_dapr_crds() -> None:
    assert sorted(path.name for path in CRDS_DIR.glob("*.yaml")) == sorted(EXPECTED)
    assert sorted(doc["metadata"]["name"] for doc in crd_documents()) == sorted(CRD_NAMES)


@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_manifest_names_scope_label_and_versions(file_name: str) -> None:
    kind, plural, singular, storage = EXPECTED[file_name]
    document = crd_document(file_name)
    assert document["apiVersion"] == "apiextensions.k8s.io/v1"
    assert document["kind"] == "CustomResourceDefinition"
    assert document["metadata"]["name"] == f"{plural}.{GROUP}"
    assert document["metadata"]["labels"] == {"app.kubernetes.io/part-of": "dapr"}
    spec = document["spec"]
    assert spec["group"] == GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": singular,
    }
    assert {v["name"]: (v["served"], v["storage"]) for v in spec["versions"]} == {
        version: (True, is_storage) for version, is_storage in storage.items()
    }
    for version in spec["versions"]:
        assert "status" not in (version.get("subresources") or {})
        assert "additionalPrinterColumns" not in version


def schema_nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path or ".", schema
    for name, child in (schema.get("properties") or {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from schema_nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from schema_nodes(schema["additionalProperties"], f"{path}.*")


@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_schemas_are_structural(file_name: str) -> None:
    for version in crd_document(file_name)["spec"]["versions"]:
        for path, node in schema_nodes(version["schema"]["openAPIV3Schema"]):
            where = f"{file_name} {version['name']} {path}"
            assert node.get("type") or node.get("x-kubernetes-preserve-unknown-fields"), where
            for required in node.get("required", []):
                assert required in node.get("properties", {}), f"{where} requires {required}"
            assert not ("properties" in node and "additionalProperties" in node), where


def test_name_value_pairs_have_one_shape_everywhere() -> None:
    def is_name_value_list(node: dict[str, Any]) -> bool:
        items = node.get("items") or {}
        return {"name", "value", "secretKeyRef", "envRef"} <= set(items.get("properties", {}))

    shapes = [
        (f"{doc['metadata']['name']}{path}", node["items"])
        for doc in crd_documents()
        for version in doc["spec"]["versions"]
        for path, node in schema_nodes(version["schema"]["openAPIV3Schema"])
        if is_name_value_list(node)
    ]
    assert sorted(path for path, _ in shapes) == [
        "components.dapr.io.spec.metadata",
        "configurations.dapr.io.spec.tracing.otel.headers",
        "httpendpoints.dapr.io.spec.headers",
        "mcpservers.dapr.io.spec.endpoint.sse.headers",
        "mcpservers.dapr.io.spec.endpoint.stdio.env",
        "mcpservers.dapr.io.spec.endpoint.streamableHTTP.headers",
    ]
    for path, shape in shapes:
        properties = shape["properties"]
        assert shape["required"] == ["name"], path
        assert properties["value"] == {
            "description": "Any JSON value, kept as written.",
            "x-kubernetes-preserve-unknown-fields": True,
        }, path
        assert properties["secretKeyRef"]["required"] == ["name"], path
        assert set(properties["secretKeyRef"]["properties"]) == {"name", "key"}, path


def test_subscription_conversion_stanza_is_daprs() -> None:
    assert crd_document("subscription.yaml")["spec"]["conversion"] == {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": {
                "service": {"namespace": "replaceme", "name": "dapr-webhook", "path": "/convert"}
            },
            "conversionReviewVersions": ["v1", "v2alpha1"],
        },
    }


def test_manifest_digest_ignores_key_order() -> None:
    document = crd_document("components.yaml")
    reordered = json.loads(json.dumps(document, sort_keys=True))
    assert manifest_digest(reordered) == manifest_digest(document)
    assert manifest_digest(
        merged(document, {"metadata": {"labels": {"x": "y"}}})
    ) != manifest_digest(document)


# ------------------------------------------------------------------ on the API server


@pytest.fixture
def namespace(kube_api: Any, kube_namespace: str) -> Iterator[str]:
    """A namespace with the CRDs installed; every Dapr object in it is deleted afterwards.

    The namespace clean-up purges one version per API group, which for ``dapr.io`` is
    v2alpha1 (Subscriptions only), so the other kinds are deleted here.
    """
    install_crds(kube_api)
    yield kube_namespace
    for plural in CREATE_VERSION:
        raw_request(kube_api, "DELETE", collection(plural, kube_namespace))


@pytest.mark.k8s
def test_install_crds_establishes_all_seven(kube_api: Any) -> None:
    install_crds(kube_api)
    for document in crd_documents():
        live = read_crd(kube_api, document["metadata"]["name"])
        conditions = {c["type"]: c["status"] for c in live["status"]["conditions"]}
        assert conditions["Established"] == "True"
        assert conditions["NamesAccepted"] == "True"
        assert live["metadata"]["labels"] == {"app.kubernetes.io/part-of": "dapr"}
        assert live["metadata"]["annotations"][DIGEST_ANNOTATION] == manifest_digest(document)
        assert live["spec"]["names"] == document["spec"]["names"]
        assert live["spec"]["scope"] == "Namespaced"
        assert live["status"]["storedVersions"] == [
            v["name"] for v in document["spec"]["versions"] if v["storage"]
        ]
        for live_version, version in zip(
            live["spec"]["versions"], document["spec"]["versions"], strict=True
        ):
            assert live_version["schema"] == version["schema"]


@pytest.mark.k8s
def test_api_server_accepts_the_subscription_conversion_stanza(kube_api: Any) -> None:
    install_crds(kube_api)
    conversion = read_crd(kube_api, "subscriptions.dapr.io")["spec"]["conversion"]
    assert conversion["strategy"] == "Webhook"
    assert conversion["webhook"]["conversionReviewVersions"] == ["v1", "v2alpha1"]
    service = conversion["webhook"]["clientConfig"]["service"]
    # The namespace is the operator's once an operator has patched the CRD.
    assert (service["name"], service["path"], service.get("port", 443)) == (
        "dapr-webhook",
        "/convert",
        443,
    )


@pytest.mark.k8s
def test_install_crds_again_writes_nothing(kube_api: Any) -> None:
    install_crds(kube_api)
    before = {name: read_crd(kube_api, name)["metadata"]["resourceVersion"] for name in CRD_NAMES}
    install_crds(kube_api)
    after = {name: read_crd(kube_api, name)["metadata"]["resourceVersion"] for name in CRD_NAMES}
    assert after == before


@pytest.mark.k8s
def test_install_crds_replaces_an_outdated_crd(kube_api: Any) -> None:
    install_crds(kube_api)
    name = "mcpservers.dapr.io"
    raw_request(
        kube_api,
        "PATCH",
        f"{CRD_PATH}/{name}",
        body={"metadata": {"labels": {"stale": "yes"}, "annotations": {DIGEST_ANNOTATION: "old"}}},
        content_type="application/merge-patch+json",
    )
    install_crds(kube_api)
    live = read_crd(kube_api, name)
    assert live["metadata"]["labels"] == {"app.kubernetes.io/part-of": "dapr"}
    assert live["metadata"]["annotations"][DIGEST_ANNOTATION] == manifest_digest(
        crd_document("mcpservers.yaml")
    )


@pytest.mark.k8s
def test_subscription_v1alpha1_is_served_beside_v2alpha1(kube_api: Any) -> None:
    install_crds(kube_api)
    for version in ("v1alpha1", "v2alpha1"):
        resources = raw_request(kube_api, "GET", f"/apis/{GROUP}/{version}")["resources"]
        assert "subscriptions" in {r["name"] for r in resources}, version
    versions = read_crd(kube_api, "subscriptions.dapr.io")["spec"]["versions"]
    assert [(v["name"], v["served"], v["storage"]) for v in versions] == [
        ("v1alpha1", True, False),
        ("v2alpha1", True, True),
    ]


@pytest.mark.k8s
def test_subscription_v1alpha1_writes_go_through_the_conversion_webhook(
    kube_api: Any, namespace: str
) -> None:
    body = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Subscription",
        "metadata": {"name": "legacy"},
        "spec": {"pubsubname": "pubsub", "topic": "orders", "route": "/orders"},
    }
    with pytest.raises(client.ApiException) as caught:
        raw_request(kube_api, "POST", collection("subscriptions", namespace, "v1alpha1"), body=body)
    # v2alpha1 is stored, so the API server must call the (absent) conversion webhook.
    assert caught.value.status == 500
    message = json.loads(caught.value.body)["message"]
    assert "conversion webhook for dapr.io/v1alpha1, Kind=Subscription failed" in message


@pytest.mark.k8s
@pytest.mark.parametrize("plural", sorted(VALID))
def test_documented_objects_are_stored_unchanged(
    kube_api: Any, namespace: str, plural: str
) -> None:
    body = VALID[plural]
    created = create(kube_api, namespace, plural, "example", body)
    stored = raw_request(kube_api, "GET", f"{collection(plural, namespace)}/example")
    for obj in (created, stored):
        assert obj["kind"] == body["kind"]
        for field in ("spec", "scopes", "auth"):
            assert obj.get(field) == body.get(field), field


@pytest.mark.k8s
def test_subscription_listed_through_v2alpha1(kube_api: Any, namespace: str) -> None:
    create(kube_api, namespace, "subscriptions", "orders", VALID["subscriptions"])
    listed = raw_request(kube_api, "GET", collection("subscriptions", namespace))
    assert [item["metadata"]["name"] for item in listed["items"]] == ["orders"]
    assert listed["items"][0]["apiVersion"] == f"{GROUP}/v2alpha1"


@pytest.mark.k8s
def test_configuration_metric_defaults_to_enabled(kube_api: Any, namespace: str) -> None:
    body = {"kind": "Configuration", "spec": {"mtls": {"enabled": True}}}
    created = create(kube_api, namespace, "configurations", "daprsystem", body)
    assert created["spec"] == {"mtls": {"enabled": True}, "metric": {"enabled": True}}
    off = merged(body, {"spec": {"metric": {"enabled": False}}})
    created = create(kube_api, namespace, "configurations", "quiet", off)
    assert created["spec"]["metric"] == {"enabled": False}


@pytest.mark.k8s
def test_http_endpoint_renegotiation_defaults_to_never(kube_api: Any, namespace: str) -> None:
    body = {
        "kind": "HTTPEndpoint",
        "spec": {"baseUrl": "https://x", "clientTLS": {"rootCA": {"value": "pem"}}},
    }
    created = create(kube_api, namespace, "httpendpoints", "tls", body)
    assert created["spec"]["clientTLS"] == {"rootCA": {"value": "pem"}, "renegotiation": "Never"}


@pytest.mark.k8s
def test_unknown_fields_are_pruned(kube_api: Any, namespace: str) -> None:
    body = merged(
        VALID["components"],
        {"spec": {"typo": "x"}, "extra": {"a": 1}},
    )
    created = create(kube_api, namespace, "components", "pruned", body)
    assert "typo" not in created["spec"]
    assert "extra" not in created
    assert created["spec"] == VALID["components"]["spec"]


@pytest.mark.k8s
@pytest.mark.parametrize(
    ("plural", "change", "message"),
    [pytest.param(plural, change, message, id=case) for case, plural, change, message in INVALID],
)
def test_schema_invalid_objects_are_rejected(
    kube_api: Any, namespace: str, plural: str, change: dict[str, Any], message: str
) -> None:
    error = rejection(kube_api, namespace, plural, "invalid", merged(VALID[plural], change))
    assert error.status == 422
    status = json.loads(error.body)
    assert status["reason"] == "Invalid"
    assert message in status["message"]
    listed = raw_request(kube_api, "GET", collection(plural, namespace))
    assert listed["items"] == []


@pytest.mark.k8s
@pytest.mark.parametrize(
    "transports",
    [set(chosen) for size in range(4) for chosen in itertools.combinations(TRANSPORTS, size)],
    ids=lambda chosen: "+".join(sorted(chosen)) or "none",
)
def test_mcp_server_needs_exactly_one_transport(
    kube_api: Any, namespace: str, transports: set[str]
) -> None:
    endpoint = {
        "streamableHTTP": {"url": "http://mcp:8080/mcp"},
        "sse": {"url": "http://mcp:8080/sse"},
        "stdio": {"command": "mcp-server", "args": ["--stdio"]},
    }
    body = {
        "kind": "MCPServer",
        "spec": {"endpoint": {name: endpoint[name] for name in transports}},
    }
    if len(transports) == 1:
        created = create(kube_api, namespace, "mcpservers", "one", body)
        assert created["spec"] == body["spec"]
        return
    error = rejection(kube_api, namespace, "mcpservers", "bad", body)
    assert error.status == 422
    assert "exactly one of streamableHTTP, sse, or stdio must be set" in error.body


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.k8s
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values.filter(lambda value: value is not None))
def test_name_value_pair_keeps_any_json_value(kube_api: Any, namespace: str, value: Any) -> None:
    body = merged(VALID["components"], {"spec": {"metadata": [name_value("anything", value)]}})
    created = create(kube_api, namespace, "components", "anything", body)
    try:
        assert created["spec"]["metadata"] == [{"name": "anything", "value": value}]
    finally:
        raw_request(kube_api, "DELETE", f"{collection('components', namespace)}/anything")


@pytest.mark.k8s
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    operations=st.lists(st.sampled_from(OPERATIONS) | st.text(min_size=1, max_size=10), max_size=5)
)
def test_policy_operations_are_limited_to_the_enum(
    kube_api: Any, namespace: str, operations: list[str]
) -> None:
    rule = {"callers": [{"appID": "a"}], "workflows": [{"name": "W", "operations": operations}]}
    body = {"kind": "WorkflowAccessPolicy", "spec": {"rules": [rule]}}
    path = f"{collection('workflowaccesspolicies', namespace)}/ops"
    if all(operation in OPERATIONS for operation in operations):
        created = create(kube_api, namespace, "workflowaccesspolicies", "ops", body)
        raw_request(kube_api, "DELETE", path)
        assert created["spec"] == body["spec"]
    else:
        error = rejection(kube_api, namespace, "workflowaccesspolicies", "ops", body)
        assert error.status == 422
        assert "Unsupported value" in error.body
