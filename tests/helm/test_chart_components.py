"""Each component's own flags and environment, parsed by daprplane's own parsers.

Placement's flags go through ``PlacementOptions`` for every peer, the injector's environment
through ``InjectorConfig``, so the chart and the launchers cannot drift apart unnoticed.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from daprplane.plugins.injector.config import InjectorConfig
from daprplane.plugins.injector.registry_mirror import mirrored, parse_rules
from daprplane.plugins.placement.options import PlacementOptions
from daprplane.plugins.sentry.ca import bundle
from tests.helm.cases import (
    CREDENTIALS_PATH,
    HA,
    NAMESPACE,
    REQUIRED,
    TRUST_BUNDLE_PATH,
    TRUST_DOMAIN,
    merged,
    rule_set,
)
from tests.helm.chart import (
    HelmError,
    Rendered,
    env_of,
    render,
)
from tests.helm.launchers import expand, parse_args, resolved_environ


def test_operator_flags(rendered_default: Rendered) -> None:
    flags = parse_args("daprplane-operator", rendered_default.container("dapr-operator")["args"])
    assert flags.watch_interval == "0"
    assert flags.max_pod_restarts_per_minute == 20
    assert flags.trust_anchors_file == f"{TRUST_BUNDLE_PATH}/ca.crt"
    assert flags.disable_service_reconciler is False
    custom = render(
        {
            "global": {"logAsJson": True, "argoRolloutServiceReconciler": {"enabled": True}},
            "dapr_operator": {
                "watchInterval": "30s",
                "watchNamespace": "apps",
                "serviceReconciler": {"enabled": False},
                "watchdogCanPatchPodLabels": True,
                "logLevel": "debug",
            },
        }
    )
    flags = parse_args("daprplane-operator", custom.container("dapr-operator")["args"])
    assert flags.watch_interval == "30s"
    assert flags.watch_namespace == "apps"
    assert flags.disable_service_reconciler is True
    assert flags.enable_argo_rollout_service_reconciler is True
    assert flags.watchdog_can_patch_pod_labels is True
    assert flags.log_as_json is True
    assert flags.log_level == "debug"
    cluster_rules = rule_set(custom.get("ClusterRole", "dapr-operator-admin")["rules"])
    assert ("", "pods", "patch", ()) in cluster_rules
    assert ("argoproj.io", "rollouts", "delete", ()) in cluster_rules
    assert ("argoproj.io", "rollouts/finalizers", "update", ()) in cluster_rules


def test_sentry_flags(rendered_default: Rendered, byo_bundle: bundle.TrustBundle) -> None:
    flags = parse_args("daprplane-sentry", rendered_default.container("dapr-sentry")["args"])
    assert flags.mode == "kubernetes"
    assert flags.trust_domain == TRUST_DOMAIN
    assert flags.issuer_credentials == CREDENTIALS_PATH
    rendered = render(
        {
            "global": {
                "mtls": {"controlPlaneTrustDomain": "example.org"},
                "issuerFilenames": {"ca": "root.pem", "cert": "issuer.pem", "key": "issuer.key2"},
            },
            "dapr_sentry": {
                "jwt": {"enabled": True, "issuer": "https://issuer.example", "ttl": "1h"},
                "oidc": {"enabled": True, "domains": ["a.example", "b.example"]},
            },
        }
    )
    flags = parse_args("daprplane-sentry", rendered.container("dapr-sentry")["args"])
    assert flags.trust_domain == "example.org"
    assert (flags.issuer_ca_filename, flags.issuer_certificate_filename) == (
        "root.pem",
        "issuer.pem",
    )
    assert flags.issuer_key_filename == "issuer.key2"
    assert flags.jwt_enabled is True and flags.jwt_issuer == "https://issuer.example"
    assert flags.jwt_ttl == datetime.timedelta(hours=1)
    assert flags.oidc_enabled is True
    assert flags.oidc_server_listen_address == "0.0.0.0"
    assert flags.oidc_server_tls_enabled is False
    assert "a.example" in str(flags.oidc_allowed_hosts)
    service_ports = rendered.get("Service", "dapr-sentry")["spec"]["ports"]
    assert {"name": "oidc", "port": 9080, "targetPort": 9080, "protocol": "TCP"}.items() <= next(
        port for port in service_ports if port["name"] == "oidc"
    ).items()
    with pytest.raises(HelmError, match=r"oidc\.enabled needs dapr_sentry\.jwt\.enabled"):
        render({"dapr_sentry": {"oidc": {"enabled": True}}})


@pytest.mark.parametrize("ha_values", [HA, {"dapr_placement": {"ha": True}}])
def test_placement_peers_in_ha(ha_values: dict[str, Any]) -> None:
    rendered = render(ha_values)
    placement = rendered.workload("dapr-placement-server")
    assert placement["spec"]["replicas"] == 3
    assert placement["spec"]["podManagementPolicy"] == "Parallel"
    assert placement["spec"]["serviceName"] == "dapr-placement-server"
    container = rendered.container("dapr-placement-server")
    ids = []
    for ordinal in range(3):
        pod_name = f"dapr-placement-server-{ordinal}"
        environ = resolved_environ(
            container, {"metadata.namespace": NAMESPACE, "metadata.name": pod_name}
        )
        flags = parse_args("daprplane-placement", expand(container["args"], environ))
        options = PlacementOptions.from_flags(flags, environ)
        assert options.node_id == pod_name
        assert options.this_peer.address == (
            f"{pod_name}.dapr-placement-server.{NAMESPACE}.svc.cluster.local:8201"
        )
        assert options.tls_enabled is True and options.mode == "kubernetes"
        assert options.sentry_address == f"dapr-sentry.{NAMESPACE}.svc.cluster.local:443"
        assert options.trust_domain == TRUST_DOMAIN
        ids.append(options.node_id)
        assert len(options.peers) == 3
    anti = placement["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"][
        "labelSelector"
    ] == {"matchLabels": {"app": "dapr-placement-server"}}
    assert "dapr-placement-server-disruption-budget" in rendered.names("PodDisruptionBudget")


def test_placement_single_peer(rendered_default: Rendered) -> None:
    placement = rendered_default.workload("dapr-placement-server")
    assert placement["spec"]["replicas"] == 1
    container = rendered_default.container("dapr-placement-server")
    environ = resolved_environ(
        container,
        {"metadata.namespace": NAMESPACE, "metadata.name": "dapr-placement-server-0"},
    )
    assert environ["DAPR_PLACEMENT_METADATA_ENABLED"] == "false"
    flags = parse_args("daprplane-placement", expand(container["args"], environ))
    options = PlacementOptions.from_flags(flags, environ)
    assert [peer.id for peer in options.peers] == ["dapr-placement-server-0"]
    assert options.port == 50005 and options.replication_factor == 100
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["api"] == 50005 and ports["raft-node"] == 8201
    zero = render({"dapr_placement": {"scaleZero": True}})
    assert zero.workload("dapr-placement-server")["spec"]["replicas"] == 0


def test_placement_anti_affinity_policy() -> None:
    required = merged(
        HA,
        {"global": {"ha": {"podAntiAffinityPolicy": REQUIRED}}},
    )
    rendered = render(required)
    anti = rendered.workload("dapr-placement-server")["spec"]["template"]["spec"]["affinity"][
        "podAntiAffinity"
    ]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == (
        "topology.kubernetes.io/zone"
    )
    # The other components always only prefer spreading.
    operator = rendered.workload("dapr-operator")["spec"]["template"]["spec"]["affinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" in operator["podAntiAffinity"]
    with pytest.raises(HelmError, match="podAntiAffinityPolicy must be"):
        render(merged(HA, {"global": {"ha": {"podAntiAffinityPolicy": "sometimes"}}}))


def test_injector_environment_configures_the_injector(rendered_default: Rendered) -> None:
    container = rendered_default.container("dapr-sidecar-injector")
    environ = resolved_environ(container, {"metadata.namespace": NAMESPACE})
    config = InjectorConfig.from_environ(environ)
    assert config.sidecar_image == "ghcr.io/dapr/daprd:1.18.3"
    assert config.pull_policy == "IfNotPresent"
    assert config.namespace == NAMESPACE
    assert config.kube_cluster_domain == "cluster.local"
    assert config.trust_anchors_file == f"{TRUST_BUNDLE_PATH}/ca.crt"
    assert config.control_plane_trust_domain == TRUST_DOMAIN
    assert config.sentry_address == f"dapr-sentry.{NAMESPACE}.svc.cluster.local:443"
    assert config.actors_enabled is True
    assert config.actors_service.name == "placement"
    assert str(config.actors_service.address.name) == "dapr-placement-server"
    assert config.actors_service.address.port == 50005
    assert config.reminders_service is None
    assert config.run_as_non_root and config.read_only_root_filesystem
    assert len(config.ignore_entrypoint_tolerations) == 4
    assert environ["DAPRPLANE_INJECTOR_PLUGIN_FAILURE"] == "skip"
    assert "DAPRPLANE_REGISTRY_MIRROR" not in environ
    flags = parse_args("daprplane-injector", container["args"])
    assert flags.scheduler_enabled is False
    assert flags.healthz_port == 8080 and flags.port == 4000
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["https"] == 4000


def test_injector_values_reach_the_injector() -> None:
    rendered = render(
        {
            "global": {"scheduler": {"enabled": True}, "reminders": {"serviceName": "scheduler"}},
            "dapr_sidecar_injector": {
                "daprdTag": "1.18.4",
                "sidecarImagePullPolicy": "Always",
                "allowedServiceAccounts": "ci:builder-*",
                "sidecarRunAsUser": 1000,
                "sidecarDropALLCapabilities": True,
                "nativeSidecar": True,
                "pluginFailurePolicy": "deny",
                "webhookPort": 4443,
            },
        }
    )
    container = rendered.container("dapr-sidecar-injector")
    environ = resolved_environ(container, {"metadata.namespace": NAMESPACE})
    config = InjectorConfig.from_environ(environ)
    assert config.sidecar_image == "ghcr.io/dapr/daprd:1.18.4"
    assert config.pull_policy == "Always"
    assert config.allowed_service_accounts == "ci:builder-*"
    assert config.run_as_user == 1000
    assert config.drop_all_capabilities and config.native_sidecar_enabled
    assert config.reminders_service is not None
    assert config.reminders_service.name == "scheduler"
    assert config.plugin_failure_policy.value == "deny"
    flags = parse_args("daprplane-injector", container["args"])
    assert flags.scheduler_enabled is True and flags.port == 4443
    full = render({"dapr_sidecar_injector": {"image": {"name": "mirror.example/daprd:dev"}}})
    environ = env_of(full.container("dapr-sidecar-injector"))
    assert environ["SIDECAR_IMAGE"] == "mirror.example/daprd:dev"
    with pytest.raises(HelmError, match="pluginFailurePolicy must be skip or deny"):
        render({"dapr_sidecar_injector": {"pluginFailurePolicy": "maybe"}})


def test_registry_mirror_values() -> None:
    rendered = render(
        {
            "dapr_sidecar_injector": {
                "registryMirror": {
                    "rules": [
                        {"source": "ghcr.io/dapr", "mirror": "registry.example.internal/dapr"},
                        {"source": "docker.io", "mirror": "registry.example.internal/hub"},
                    ],
                    "imagePullSecrets": ["mirror-creds", "other"],
                }
            }
        }
    )
    environ = env_of(rendered.container("dapr-sidecar-injector"))
    rules = parse_rules(environ["DAPRPLANE_REGISTRY_MIRROR"])
    assert rules == [
        ("ghcr.io/dapr", "registry.example.internal/dapr"),
        ("docker.io", "registry.example.internal/hub"),
    ]
    assert mirrored(environ["SIDECAR_IMAGE"], rules) == (
        "registry.example.internal/dapr/daprd:1.18.3"
    )
    assert environ["DAPRPLANE_IMAGE_PULL_SECRETS"] == "mirror-creds,other"
    # Only the injector is configured by them.
    for name in ("dapr-operator", "dapr-sentry", "dapr-placement-server"):
        assert "DAPRPLANE_REGISTRY_MIRROR" not in env_of(rendered.container(name))
    with pytest.raises(HelmError, match="needs a mirror"):
        render({"dapr_sidecar_injector": {"registryMirror": {"rules": [{"source": "a"}]}}})


def test_actors_disabled() -> None:
    rendered = render({"global": {"actors": {"enabled": False}}})
    assert "dapr-placement-server" not in {w["metadata"]["name"] for w in rendered.workloads()}
    assert "dapr-placement-server" not in rendered.names("Service")
    assert "dapr-placement" not in rendered.names("ServiceAccount")
    injector = rendered.container("dapr-sidecar-injector")
    environ = resolved_environ(injector, {"metadata.namespace": NAMESPACE})
    assert InjectorConfig.from_environ(environ).actors_enabled is False


def test_unknown_actors_service_is_refused() -> None:
    with pytest.raises(HelmError, match="unknown actors/reminders service"):
        render({"global": {"actors": {"serviceName": "elsewhere"}}})
