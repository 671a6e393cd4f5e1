"""What every control-plane workload of the chart shares: pods, identity, images, scheduling, HA.

Rendered flags are parsed by the launchers' own command-line parsers, so a flag a launcher would
reject fails here.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tests.helm.cases import (
    CREDENTIALS_PATH,
    HA,
    IDENTITY_WORKLOADS,
    NAMESPACE,
    TOKEN_PATH,
    TRUST_BUNDLE_PATH,
    TRUST_DOMAIN,
    WORKLOADS,
    merged,
)
from tests.helm.chart import (
    Rendered,
    env_of,
    render,
)
from tests.helm.launchers import expand, parse_args, resolved_environ


def test_workloads_share_the_hardened_shape(value_set: dict[str, Any]) -> None:
    rendered = render(value_set)
    for name, (kind, component, account, command) in WORKLOADS.items():
        workload = rendered.workload(name)
        assert workload["kind"] == kind
        assert workload["metadata"]["labels"]["app"] == name
        assert workload["spec"]["selector"] == {"matchLabels": {"app": name}}
        pod = workload["spec"]["template"]
        assert pod["metadata"]["labels"]["app"] == name
        annotations = pod["metadata"]["annotations"]
        assert annotations["dapr.io/control-plane"] == component
        assert "dapr.io/app-id" not in annotations  # sentry would issue an app identity
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == "9090"
        spec = pod["spec"]
        assert spec["serviceAccountName"] == account
        container = rendered.container(name)
        assert container["image"] == "ghcr.io/daprplane/daprplane:0.1.0"
        assert container["command"] == [command]
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": 8080}
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert env_of(container)["NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchExpressions"][0] == {
            "key": "kubernetes.io/os",
            "operator": "In",
            "values": ["linux"],
        }


def test_identity_mounts(rendered_default: Rendered) -> None:
    for name in IDENTITY_WORKLOADS:
        container = rendered_default.container(name)
        spec = rendered_default.workload(name)["spec"]["template"]["spec"]
        mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        trust = volumes[mounts[TRUST_BUNDLE_PATH]["name"]]
        assert trust["configMap"]["name"] == "dapr-trust-bundle"
        assert mounts[TRUST_BUNDLE_PATH]["readOnly"] is True
        token = volumes[mounts[TOKEN_PATH]["name"]]
        assert token["projected"]["sources"] == [
            {
                "serviceAccountToken": {
                    "path": "token",
                    "expirationSeconds": 600,
                    "audience": f"spiffe://{TRUST_DOMAIN}/ns/{NAMESPACE}/dapr-sentry",
                }
            }
        ]
    sentry = rendered_default.container("dapr-sentry")
    sentry_volumes = rendered_default.workload("dapr-sentry")["spec"]["template"]["spec"]["volumes"]
    mounts = {mount["mountPath"]: mount["name"] for mount in sentry["volumeMounts"]}
    credentials = next(v for v in sentry_volumes if v["name"] == mounts[CREDENTIALS_PATH])
    assert credentials["secret"]["secretName"] == "dapr-trust-bundle"


def test_token_audience_follows_trust_domain_and_namespace() -> None:
    rendered = render(
        {"global": {"mtls": {"controlPlaneTrustDomain": "example.org", "mountSentryVolume": True}}},
        namespace="cp",
    )
    spec = rendered.workload("dapr-operator")["spec"]["template"]["spec"]
    token = next(v for v in spec["volumes"] if v["name"] == "dapr-identity-token")
    source = token["projected"]["sources"][0]["serviceAccountToken"]
    assert source["audience"] == "spiffe://example.org/ns/cp/dapr-sentry"
    without = render({"global": {"mtls": {"mountSentryVolume": False}}})
    paths = [m["mountPath"] for m in without.container("dapr-operator")["volumeMounts"]]
    assert TOKEN_PATH not in paths and TRUST_BUNDLE_PATH in paths


def test_launchers_accept_the_rendered_flags(value_set: dict[str, Any]) -> None:
    rendered = render(value_set)
    for name in WORKLOADS:
        container = rendered.container(name)
        environ = resolved_environ(
            container, {"metadata.namespace": NAMESPACE, "metadata.name": f"{name}-0"}
        )
        flags = parse_args(container["command"][0], expand(container["args"], environ))
        assert flags.log_level == "info"
        assert flags.enable_metrics is True
        assert flags.metrics_port == "9090"


def test_metrics_off() -> None:
    rendered = render({"global": {"prometheus": {"enabled": False}}})
    for name in WORKLOADS:
        container = rendered.container(name)
        args = expand(container["args"], {"PLACEMENT_ID": "dapr-placement-server-0"})
        flags = parse_args(container["command"][0], args)
        assert flags.enable_metrics is False
        annotations = rendered.workload(name)["spec"]["template"]["metadata"]["annotations"]
        assert "prometheus.io/scrape" not in annotations
    ports = {port["name"] for port in rendered.get("Service", "dapr-api")["spec"]["ports"]}
    assert ports == {"grpc", "legacy"}


def test_ha(rendered_ha: Rendered, rendered_default: Rendered) -> None:
    for name in WORKLOADS:
        workload = rendered_ha.workload(name)
        assert workload["spec"]["replicas"] == 3, name
        anti = workload["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        assert term["weight"] == 100
        assert term["podAffinityTerm"]["labelSelector"] == {"matchLabels": {"app": name}}
        assert term["podAffinityTerm"]["topologyKey"] == "topology.kubernetes.io/zone"
        budget = rendered_ha.get("PodDisruptionBudget", f"{name}-disruption-budget")
        assert budget["apiVersion"] == "policy/v1"
        selector = {"matchLabels": {"app": name}}
        assert budget["spec"] == {"maxUnavailable": "25%", "selector": selector}
        single = rendered_default.workload(name)["spec"]
        assert single["replicas"] == 1
        assert "podAntiAffinity" not in single["template"]["spec"]["affinity"]
    assert not rendered_default.of_kind("PodDisruptionBudget")
    minimum = render(merged(HA, {"global": {"ha": {"disruption": {"minimumAvailable": 2}}}}))
    assert (
        minimum.get("PodDisruptionBudget", "dapr-operator-disruption-budget")["spec"][
            "minAvailable"
        ]
        == 2
    )


@pytest.mark.parametrize(
    "pull_secrets",
    ["regcred", ["regcred", "second"], [{"name": "regcred"}, {"name": "second"}]],
    ids=["string", "names", "objects"],
)
def test_custom_registry_and_pull_secrets(pull_secrets: Any) -> None:
    rendered = render(
        {
            "global": {
                "registry": "registry.example.internal/mirror/",
                "tag": "1.2.3-rc.1",
                "imagePullSecrets": pull_secrets,
                "imagePullPolicy": "Always",
            }
        }
    )
    expected = [{"name": "regcred"}]
    if not isinstance(pull_secrets, str):
        expected.append({"name": "second"})
    for name in WORKLOADS:
        container = rendered.container(name)
        assert container["image"] == "registry.example.internal/mirror/daprplane:1.2.3-rc.1"
        assert container["imagePullPolicy"] == "Always"
        spec = rendered.workload(name)["spec"]["template"]["spec"]
        assert spec["imagePullSecrets"] == expected
        labels = rendered.workload(name)["metadata"]["labels"]
        assert labels["app.kubernetes.io/version"] == "1.2.3-rc.1"
    # The sidecar image is Dapr's, whatever registry the control plane comes from.
    environ = env_of(rendered.container("dapr-sidecar-injector"))
    assert environ["SIDECAR_IMAGE"] == "ghcr.io/dapr/daprd:1.18.3"


def test_scheduling_values() -> None:
    toleration = {"key": "dedicated", "operator": "Equal", "value": "dapr", "effect": "NoSchedule"}
    rendered = render(
        {
            "global": {
                "nodeSelector": {"pool": "system"},
                "tolerations": [toleration],
                "priorityClassName": "system-cluster-critical",
                "daprControlPlaneArch": "arm64",
                "labels": {"team": "platform"},
                "seccompProfile": "RuntimeDefault",
            }
        }
    )
    for name in WORKLOADS:
        pod = rendered.workload(name)["spec"]["template"]
        spec = pod["spec"]
        assert spec["nodeSelector"] == {"pool": "system"}
        assert spec["tolerations"] == [toleration]
        assert spec["priorityClassName"] == "system-cluster-critical"
        expressions = spec["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"][0]["matchExpressions"]
        assert {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]} in expressions
        assert pod["metadata"]["labels"]["team"] == "platform"
        security = rendered.container(name)["securityContext"]
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    quota = rendered.get("ResourceQuota", "dapr-system-critical-pods")
    assert quota["spec"]["scopeSelector"]["matchExpressions"][0]["values"] == [
        "system-cluster-critical"
    ]


def test_plugin_selection_reaches_every_component(rendered_default: Rendered) -> None:
    for name in WORKLOADS:
        environ = env_of(rendered_default.container(name))
        assert "DAPRPLANE_PLUGINS" not in environ and "DAPRPLANE_DISABLE_PLUGINS" not in environ
    rendered = render(
        {
            "plugins": {
                "enabled": ["operator", "acme-extra"],
                "disabled": ["injector-registry-mirror"],
            }
        }
    )
    for name in WORKLOADS:
        environ = env_of(rendered.container(name))
        # The components stay on an allow-list, once each, whatever it names.
        assert environ["DAPRPLANE_PLUGINS"] == "operator,sentry,placement,injector,acme-extra"
        assert environ["DAPRPLANE_DISABLE_PLUGINS"] == "injector-registry-mirror"


def test_extra_env_args_and_volumes() -> None:
    rendered = render(
        {
            "global": {
                "extraVolumes": {"sentry": [{"name": "oidc-tls", "secret": {"secretName": "t"}}]},
                "extraVolumeMounts": {"sentry": [{"name": "oidc-tls", "mountPath": "/tls"}]},
            },
            "dapr_placement": {
                "extraEnvVars": {"DAPRPLANE_PLACEMENT_LEASE_DURATION": "20s"},
                "extraArgs": ["--disseminate-coalesce-window=150ms"],
            },
        }
    )
    placement = rendered.container("dapr-placement-server")
    assert env_of(placement)["DAPRPLANE_PLACEMENT_LEASE_DURATION"] == "20s"
    flags = parse_args("daprplane-placement", placement["args"])
    assert flags.disseminate_coalesce_window == datetime.timedelta(milliseconds=150)
    sentry = rendered.container("dapr-sentry")
    assert {"name": "oidc-tls", "mountPath": "/tls"} in sentry["volumeMounts"]
    volumes = rendered.workload("dapr-sentry")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "oidc-tls", "secret": {"secretName": "t"}} in volumes
