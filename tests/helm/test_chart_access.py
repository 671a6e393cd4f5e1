"""Who reaches the control plane and with what: Services, the webhook configuration, the
``daprsystem`` Configuration, RBAC and the trust bundle.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from daprplane.plugins.sentry.ca import bundle
from tests.helm.cases import (
    NAMESPACE,
    TRUST_DOMAIN,
    byo_values,
    rule_set,
)
from tests.helm.chart import (
    HelmError,
    Rendered,
    env_of,
    render,
)


def test_services(rendered_default: Rendered) -> None:
    def ports(name: str) -> dict[str, dict[str, Any]]:
        return {
            port["name"]: port for port in rendered_default.get("Service", name)["spec"]["ports"]
        }

    api = rendered_default.get("Service", "dapr-api")
    assert api["spec"]["selector"] == {"app": "dapr-operator"}
    assert ports("dapr-api")["grpc"] == {
        "name": "grpc",
        "port": 443,
        "targetPort": 6500,
        "protocol": "TCP",
        "appProtocol": "tls",
    }
    assert (ports("dapr-api")["legacy"]["port"], ports("dapr-api")["legacy"]["targetPort"]) == (
        80,
        6500,
    )
    assert ports("dapr-api")["metrics"]["port"] == 9090
    assert api["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    webhook = rendered_default.get("Service", "dapr-webhook")
    assert webhook["spec"]["selector"] == {"app": "dapr-operator"}
    assert [(p["port"], p["targetPort"]) for p in webhook["spec"]["ports"]] == [(443, 19443)]
    sentry = rendered_default.get("Service", "dapr-sentry")
    assert sentry["spec"]["selector"] == {"app": "dapr-sentry"}
    assert (ports("dapr-sentry")["grpc"]["port"], ports("dapr-sentry")["grpc"]["targetPort"]) == (
        443,
        50001,
    )
    placement = rendered_default.get("Service", "dapr-placement-server")
    assert placement["spec"]["clusterIP"] == "None"
    assert placement["spec"]["publishNotReadyAddresses"] is True
    assert placement["spec"]["selector"] == {"app": "dapr-placement-server"}
    assert ports("dapr-placement-server")["api"]["port"] == 50005
    assert ports("dapr-placement-server")["raft-node"]["port"] == 8201
    injector = rendered_default.get("Service", "dapr-sidecar-injector")
    assert injector["spec"]["selector"] == {"app": "dapr-sidecar-injector"}
    assert ports("dapr-sidecar-injector")["https"]["port"] == 443
    assert ports("dapr-sidecar-injector")["https"]["targetPort"] == "https"


def test_webhook_configuration(rendered_default: Rendered) -> None:
    config = rendered_default.get("MutatingWebhookConfiguration", "dapr-sidecar-injector")
    (webhook,) = config["webhooks"]
    assert webhook["name"] == "sidecar-injector.dapr.io"
    assert webhook["clientConfig"] == {
        "service": {"namespace": NAMESPACE, "name": "dapr-sidecar-injector", "path": "/mutate"}
    }
    assert webhook["rules"] == [
        {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"]}
    ]
    assert webhook["failurePolicy"] == "Ignore"
    assert webhook["sideEffects"] == "None"
    assert webhook["reinvocationPolicy"] == "IfNeeded"
    assert webhook["admissionReviewVersions"] == ["v1", "v1beta1"]
    assert "namespaceSelector" not in webhook and "objectSelector" not in webhook
    selector = {"matchLabels": {"dapr": "on"}}
    custom = render(
        {
            "dapr_sidecar_injector": {
                "webhookFailurePolicy": "Fail",
                "namespaceSelector": selector,
                "objectSelector": selector,
            }
        }
    )
    (webhook,) = custom.get("MutatingWebhookConfiguration", "dapr-sidecar-injector")["webhooks"]
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["namespaceSelector"] == selector and webhook["objectSelector"] == selector
    off = render({"dapr_sidecar_injector": {"enabled": False}})
    assert "dapr-sidecar-injector" not in off.names("MutatingWebhookConfiguration")
    assert not {"dapr-sidecar-injector"} & {w["metadata"]["name"] for w in off.workloads()}


def test_daprsystem_configuration(rendered_default: Rendered) -> None:
    config = rendered_default.get("Configuration", "daprsystem")
    assert config["apiVersion"] == "dapr.io/v1alpha1"
    assert config["spec"] == {
        "mtls": {
            "enabled": True,
            "workloadCertTTL": "24h",
            "allowedClockSkew": "15m",
            "controlPlaneTrustDomain": TRUST_DOMAIN,
            "sentryAddress": f"dapr-sentry.{NAMESPACE}.svc.cluster.local:443",
        }
    }
    custom = render(
        {
            "global": {
                "mtls": {
                    "enabled": False,
                    "workloadCertTTL": "1h",
                    "controlPlaneTrustDomain": "example.org",
                    "sentryAddress": "sentry.example:443",
                }
            }
        }
    )
    mtls = custom.get("Configuration", "daprsystem")["spec"]["mtls"]
    assert (mtls["enabled"], mtls["workloadCertTTL"]) == (False, "1h")
    assert mtls["sentryAddress"] == "sentry.example:443"
    environ = env_of(custom.container("dapr-sidecar-injector"))
    assert environ["DAPR_SENTRY_ADDRESS"] == "sentry.example:443"
    assert environ["DAPR_CONTROL_PLANE_TRUST_DOMAIN"] == "example.org"
    skipped = render({"dapr_config": {"dapr_config_chart_included": False}})
    assert not skipped.of_kind("Configuration")


def test_operator_rbac(rendered_default: Rendered) -> None:
    cluster = rule_set(rendered_default.get("ClusterRole", "dapr-operator-admin")["rules"])
    dapr_kinds = (
        "components",
        "configurations",
        "subscriptions",
        "resiliencies",
        "httpendpoints",
        "mcpservers",
        "workflowaccesspolicies",
    )
    expected = {
        *{("apiextensions.k8s.io", "customresourcedefinitions", v, ()) for v in ("get", "patch")},
        *{
            ("apps", resource, verb, ())
            for resource in ("deployments", "statefulsets")
            for verb in ("get", "list", "watch")
        },
        *{
            ("apps", f"{resource}/finalizers", verb, ())
            for resource in ("deployments", "statefulsets")
            for verb in ("get", "list", "watch", "update")
        },
        *{("", "pods", verb, ()) for verb in ("get", "list", "delete", "watch")},
        *{
            ("", resource, verb, ())
            for resource in ("services", "services/finalizers")
            for verb in ("get", "list", "watch", "update", "create")
        },
        ("", "services", "delete", ()),
        *{("", "secrets", verb, ()) for verb in ("get", "list", "watch")},
        *{("dapr.io", kind, verb, ()) for kind in dapr_kinds for verb in ("get", "list", "watch")},
        ("", "events", "create", ()),
    }
    assert cluster == expected
    role = rule_set(rendered_default.get("Role", "dapr-operator")["rules"])
    names = ("operator.dapr.io", "webhooks.dapr.io")
    for verb in ("get", "list", "watch", "update", "create"):
        assert ("coordination.k8s.io", "leases", verb, names) in role
    assert ("coordination.k8s.io", "leases", "create", ()) in role
    assert ("", "events", "create", ()) in role
    assert_bound(rendered_default, "ClusterRoleBinding", "dapr-operator-admin", "dapr-operator")
    assert_bound(rendered_default, "RoleBinding", "dapr-operator", "dapr-operator")


def test_other_components_rbac(rendered_default: Rendered) -> None:
    sentry = rule_set(rendered_default.get("ClusterRole", "dapr-sentry")["rules"])
    assert ("authentication.k8s.io", "tokenreviews", "create", ()) in sentry
    assert {("", "pods", verb, ()) for verb in ("get", "list", "watch")} <= sentry
    assert {("dapr.io", "configurations", verb, ()) for verb in ("get", "list", "watch")} <= sentry
    sentry_role = rule_set(rendered_default.get("Role", "dapr-sentry")["rules"])
    bundle_name = ("dapr-trust-bundle",)
    for verb in ("get", "update", "delete", "list", "watch"):
        assert ("", "secrets", verb, bundle_name) in sentry_role
    for verb in ("get", "update", "list", "watch"):
        assert ("", "configmaps", verb, bundle_name) in sentry_role
    assert not any(rule[1] == "secrets" and not rule[3] for rule in sentry_role)
    injector = rule_set(rendered_default.get("ClusterRole", "dapr-injector")["rules"])
    assert injector == {
        ("", "serviceaccounts", "get", ()),
        ("", "serviceaccounts", "list", ()),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "patch",
            ("dapr-sidecar-injector",),
        ),
        ("dapr.io", "components", "get", ()),
        ("dapr.io", "components", "list", ()),
    }
    injector_role = rule_set(rendered_default.get("Role", "dapr-injector")["rules"])
    assert ("dapr.io", "configurations", "get", ()) in injector_role
    assert rendered_default.get("ClusterRole", "dapr-placement")["rules"] == []
    placement_role = rule_set(rendered_default.get("Role", "dapr-placement")["rules"])
    assert placement_role == {
        ("coordination.k8s.io", "leases", "get", ("dapr-placement-leader",)),
        ("coordination.k8s.io", "leases", "update", ("dapr-placement-leader",)),
        ("coordination.k8s.io", "leases", "create", ()),
    }
    for name, account in (
        ("dapr-sentry", "dapr-sentry"),
        ("dapr-injector", "dapr-injector"),
        ("dapr-placement", "dapr-placement"),
    ):
        assert_bound(rendered_default, "ClusterRoleBinding", name, account)
        assert_bound(rendered_default, "RoleBinding", name, account)


def assert_bound(rendered: Rendered, kind: str, name: str, account: str) -> None:
    binding = rendered.get(kind, name)
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": kind.removesuffix("Binding"),
        "name": name,
    }


def test_namespaced_rbac() -> None:
    rendered = render({"global": {"rbac": {"namespaced": True}}})
    assert rendered.names("ClusterRole") == {"dapr-sentry", "dapr-injector"}
    operator_role = rule_set(rendered.get("Role", "dapr-operator")["rules"])
    assert ("dapr.io", "components", "watch", ()) in operator_role
    sentry_cluster = rule_set(rendered.get("ClusterRole", "dapr-sentry")["rules"])
    assert sentry_cluster == {("authentication.k8s.io", "tokenreviews", "create", ())}
    assert ("", "pods", "get", ()) in rule_set(rendered.get("Role", "dapr-sentry")["rules"])


def test_trust_bundle_empty_by_default(rendered_default: Rendered) -> None:
    assert "data" not in rendered_default.get("Secret", "dapr-trust-bundle")
    assert "data" not in rendered_default.get("ConfigMap", "dapr-trust-bundle")


def test_trust_bundle_from_values(byo_bundle: bundle.TrustBundle) -> None:
    rendered = render(byo_values(byo_bundle))
    secret = rendered.get("Secret", "dapr-trust-bundle")
    data = {key: base64.b64decode(value) for key, value in secret["data"].items()}
    assert set(data) == {"ca.crt", "issuer.crt", "issuer.key"}
    config_map = rendered.get("ConfigMap", "dapr-trust-bundle")
    # Sentry starts a new CA unless the ConfigMap's anchors equal the Secret's byte for byte.
    assert config_map["data"]["ca.crt"].encode() == data["ca.crt"]
    # What sentry loads from the Secret is the bundle that was given.
    loaded = bundle.verify(data["ca.crt"], data["issuer.crt"], data["issuer.key"])
    assert loaded.issuer == byo_bundle.issuer
    assert loaded.trust_anchors == byo_bundle.trust_anchors


def test_partial_trust_bundle_is_refused(byo_bundle: bundle.TrustBundle) -> None:
    values = byo_values(byo_bundle)
    del values["dapr_sentry"]["tls"]["issuer"]["keyPEM"]
    with pytest.raises(HelmError, match=r"give all of issuer\.certPEM, issuer\.keyPEM"):
        render(values)
