"""Value sets the chart tests render, and what every rendering is expected to hold."""

from __future__ import annotations

from typing import Any

from daprplane.plugins.sentry.ca import bundle

NAMESPACE = "dapr-system"
TRUST_DOMAIN = "cluster.local"
WORKLOADS = {
    # workload name: (kind, component, ServiceAccount, command)
    "dapr-operator": ("Deployment", "operator", "dapr-operator", "daprplane-operator"),
    "dapr-sentry": ("Deployment", "sentry", "dapr-sentry", "daprplane-sentry"),
    "dapr-placement-server": ("StatefulSet", "placement", "dapr-placement", "daprplane-placement"),
    "dapr-sidecar-injector": ("Deployment", "injector", "dapr-injector", "daprplane-injector"),
}
# Workloads that get their identity from sentry (sentry itself holds the CA instead).
IDENTITY_WORKLOADS = ("dapr-operator", "dapr-placement-server", "dapr-sidecar-injector")
TRUST_BUNDLE_PATH = "/var/run/secrets/dapr.io/tls"
TOKEN_PATH = "/var/run/secrets/dapr.io/sentrytoken"
CREDENTIALS_PATH = "/var/run/secrets/dapr.io/credentials"
WEBHOOK_COLLECTION = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"

HA: dict[str, Any] = {"global": {"ha": {"enabled": True}}}
#: The value sets every broad check runs with: Dapr's defaults, HA, and a bring-your-own CA.
VALUE_SETS = ("default", "ha", "byo")


def byo_values(trust: bundle.TrustBundle) -> dict[str, Any]:
    return {
        "dapr_sentry": {
            "tls": {
                "issuer": {
                    "certPEM": trust.issuer_chain_pem.decode(),
                    "keyPEM": trust.issuer_key_pem.decode(),
                },
                "root": {"certPEM": trust.trust_anchors_pem.decode()},
            }
        }
    }


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of values layers, later ones winning."""
    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = merged(result[key], value)
            else:
                result[key] = value
    return result


def rule_set(rules: list[dict[str, Any]]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    """RBAC rules flattened to ``(group, resource, verb, resourceNames)``."""
    flat = set()
    for rule in rules:
        names = tuple(sorted(rule.get("resourceNames", [])))
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    flat.add((group, resource, verb, names))
    return flat
