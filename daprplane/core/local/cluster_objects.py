"""The objects ``daprplane up --kubeconfig`` keeps in a cluster for components that run here.

A component outside the cluster still needs what its pod would give it: a ServiceAccount token
bound to a Pod annotated ``dapr.io/control-plane`` (sentry's Kubernetes validator checks both).
The Pod here is a stand-in that never runs: a scheduling gate keeps every scheduler away from it,
and deleting it at stop invalidates the tokens bound to it. The webhook reaches the local injector
through an ExternalName Service, so the API server checks the injector's certificate for the
Service's usual DNS name, the name sentry puts in it.
"""

from __future__ import annotations

from typing import Any

MANAGED_BY = {"app.kubernetes.io/managed-by": "daprplane-up"}
SCHEDULING_GATE = "daprplane.io/runs-outside-the-cluster"
WEBHOOK_NAME = "dapr-sidecar-injector"
INJECTOR_SERVICE = "dapr-sidecar-injector"
TRUST_BUNDLE = "dapr-trust-bundle"
SYSTEM_CONFIGURATION = "daprsystem"
#: What the stand-in pod would run if anything ever started it: nothing.
PLACEHOLDER_IMAGE = "registry.k8s.io/pause:3.10"

#: component -> its ServiceAccount, as Dapr's chart names them.
SERVICE_ACCOUNTS = {
    "placement": "dapr-placement",
    "operator": "dapr-operator",
    "injector": "dapr-injector",
}


def service_account(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
    }


def stand_in_pod(component: str, name: str) -> dict[str, Any]:
    """The Pod a local ``component`` process is bound to; it is never scheduled."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {**MANAGED_BY, "app": f"dapr-{component}"},
            "annotations": {"dapr.io/control-plane": component},
        },
        "spec": {
            "serviceAccountName": SERVICE_ACCOUNTS[component],
            "schedulingGates": [{"name": SCHEDULING_GATE}],
            "containers": [{"name": component, "image": PLACEHOLDER_IMAGE}],
        },
    }


def token_request(pod: dict[str, Any], audience: str, seconds: int) -> dict[str, Any]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": [audience],
            "expirationSeconds": seconds,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            },
        },
    }


def system_configuration(trust_domain: str, sentry_address: str) -> dict[str, Any]:
    """``daprsystem`` with the chart's defaults, pointing the operator at the local sentry."""
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Configuration",
        "metadata": {"name": SYSTEM_CONFIGURATION, "labels": dict(MANAGED_BY)},
        "spec": {
            "mtls": {
                "enabled": True,
                "workloadCertTTL": "24h",
                "allowedClockSkew": "15m",
                "controlPlaneTrustDomain": trust_domain,
                "sentryAddress": sentry_address,
            }
        },
    }


def empty_trust_bundle(kind: str) -> dict[str, Any]:
    """The Secret or ConfigMap sentry fills with its CA on first start."""
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": TRUST_BUNDLE, "labels": dict(MANAGED_BY)},
    }


def injector_service(webhook_host: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": INJECTOR_SERVICE, "labels": dict(MANAGED_BY)},
        "spec": {"type": "ExternalName", "externalName": webhook_host},
    }


def webhook_configuration(namespace: str, port: int) -> dict[str, Any]:
    """Dapr's webhook registration, pointed at the local injector's port; the injector adds
    the ``caBundle`` itself when it starts, as in a cluster."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": WEBHOOK_NAME,
            "labels": {**MANAGED_BY, "daprplane.io/namespace": namespace},
        },
        "webhooks": [
            {
                "name": "sidecar-injector.dapr.io",
                "clientConfig": {
                    "service": {
                        "namespace": namespace,
                        "name": INJECTOR_SERVICE,
                        "path": "/mutate",
                        "port": port,
                    }
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ],
                # Never the control plane's own namespace: its stand-in pods must not be injected.
                "namespaceSelector": {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "NotIn",
                            "values": [namespace, "kube-system"],
                        }
                    ]
                },
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "reinvocationPolicy": "IfNeeded",
                "admissionReviewVersions": ["v1", "v1beta1"],
                "timeoutSeconds": 10,
            }
        ],
    }
