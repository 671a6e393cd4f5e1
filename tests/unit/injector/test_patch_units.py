"""Unit vectors for the parsers and for each annotation's effect on the patch."""

from __future__ import annotations

from typing import Any

import pytest

from daprplane.plugins.injector.config import ConfigError, InjectorConfig, PluginFailurePolicy
from daprplane.plugins.injector.envparse import SecretReference, parse_env, parse_env_from_secret
from daprplane.plugins.injector.patcher import PatchError, build_patch, needs_injection
from daprplane.plugins.injector.quantity import QuantityError, canonical_quantity
from tests.unit.injector.examples import HELM_ENV, PEM, helm_config, nodeapp_pod


def patch_for(annotations: dict[str, str] | None = None, **env: str) -> list[dict[str, Any]]:
    pod = nodeapp_pod()
    pod["metadata"]["annotations"].update(annotations or {})
    return build_patch(pod, helm_config(**env), namespace="default", trust_anchors=PEM)


def sidecar_of(patch: list[dict[str, Any]]) -> dict[str, Any]:
    [op] = [
        op
        for op in patch
        if op["path"] in ("/spec/containers/-", "/spec/initContainers/-")
        and op["value"].get("name") == "daprd"
    ]
    return op["value"]


def args(annotations: dict[str, str] | None = None, **env: str) -> list[str]:
    return sidecar_of(patch_for(annotations, **env))["args"]


def env_of(annotations: dict[str, str]) -> list[dict[str, Any]]:
    return sidecar_of(patch_for(annotations))["env"]


# --- parsers -------------------------------------------------------------------------------


def test_env_parser_keeps_commas_and_equals_inside_values():
    text = (
        "ENV_BEFORE=value1,OTEL_RESOURCE_ATTRIBUTES=service.namespace=prod,service.version=1.0.0,"
        "ENV_AFTER=value2"
    )
    assert parse_env(text) == [
        ("ENV_BEFORE", "value1"),
        ("OTEL_RESOURCE_ATTRIBUTES", "service.namespace=prod,service.version=1.0.0"),
        ("ENV_AFTER", "value2"),
    ]


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("", []),
        ("novalue", []),
        (" A=1 , B=2 ", [("A", "1"), ("B", "2")]),
        ("A=x,y", [("A", "x,y")]),
        ("A=", [("A", "")]),
        ("=v,B=1", [("B", "1")]),
        ("A=1,,B=2", [("A", "1,"), ("B", "2")]),
        ("A='q,1'", [("A", "'q,1'")]),
    ],
)
def test_env_parser_vectors(text, pairs):
    assert parse_env(text) == pairs


def test_env_from_secret_forms():
    refs, names = parse_env_from_secret("A=s1,B=s2:k2,C=s:k:x")
    assert refs == [SecretReference("A", "s1", "s1"), SecretReference("B", "s2", "k2")]
    assert names == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("500m", "500m"),
        ("0.5", "500m"),
        ("1024Mi", "1Gi"),
        ("100Mi", "100Mi"),
        ("1000", "1k"),
        ("1.5Gi", "1536Mi"),
        ("0m", "0m"),
        ("0", "0"),
        ("1e3", "1e3"),
        ("1e100", "9223372036854775807"),
        ("0.0000000001", "1n"),
        ("0.1Ki", "102400m"),
        ("-2Ki", "-2Ki"),
        ("1E", "1E"),
        ("128974848", "128974848"),
    ],
)
def test_quantities_are_canonicalised_like_kubernetes(text, canonical):
    assert canonical_quantity(text) == canonical


@pytest.mark.parametrize(
    "text",
    ["", "abc", "1.5.5", "1Ki3", "1e", "1mi", "--1", "1 ", "12 Mi", "1e99999999999999999999"],
)
def test_invalid_quantities_are_refused(text):
    with pytest.raises(QuantityError):
        canonical_quantity(text)


# --- config --------------------------------------------------------------------------------


def test_config_defaults_and_required():
    config = InjectorConfig.from_environ(
        {"SIDECAR_IMAGE": "img", "NAMESPACE": "ns", "KUBE_CLUSTER_DOMAIN": "x"}
    )
    assert config.pull_policy == "Always"
    assert config.actors_enabled and config.run_as_non_root and config.read_only_root_filesystem
    assert config.trust_anchors_file == "/var/run/dapr.io/tls/ca.crt"
    assert config.plugin_failure_policy is PluginFailurePolicy.SKIP
    with pytest.raises(ConfigError, match="SIDECAR_IMAGE"):
        InjectorConfig.from_environ({"NAMESPACE": "ns"})
    with pytest.raises(ConfigError, match="NAMESPACE"):
        InjectorConfig.from_environ({"SIDECAR_IMAGE": "img", "NAMESPACE": ""})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIDECAR_RUN_AS_USER": "abc"}, "SIDECAR_RUN_AS_USER"),
        (
            {"ACTORS_SERVICE_NAME": "x", "ACTORS_SERVICE_ADDRESS": "noport"},
            "ACTORS_SERVICE_ADDRESS",
        ),
        (
            {"REMINDERS_SERVICE_NAME": "r", "REMINDERS_SERVICE_ADDRESS": "a:b"},
            "REMINDERS_SERVICE_ADDRESS",
        ),
        ({"DAPRPLANE_INJECTOR_PLUGIN_FAILURE": "explode"}, "skip"),
    ],
)
def test_config_errors(env, message):
    with pytest.raises(ConfigError, match=message):
        InjectorConfig.from_environ({**HELM_ENV, **env})


def test_pull_policy_unknown_is_if_not_present():
    assert helm_config(SIDECAR_IMAGE_PULL_POLICY="Sometimes").pull_policy == "IfNotPresent"
    assert helm_config(SIDECAR_IMAGE_PULL_POLICY="").pull_policy == "IfNotPresent"


def test_cluster_domain_from_resolv_conf(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 10.0.0.10\nsearch ns.svc.k8s.example svc.k8s.example k8s.example\n")
    env = {"SIDECAR_IMAGE": "i", "NAMESPACE": "n"}
    assert (
        InjectorConfig.from_environ(env, resolv_conf=str(path)).kube_cluster_domain == "k8s.example"
    )
    missing = str(tmp_path / "missing")
    assert (
        InjectorConfig.from_environ(env, resolv_conf=missing).kube_cluster_domain == "cluster.local"
    )


def test_tolerations_json_is_case_insensitive_and_invalid_is_ignored():
    config = helm_config(IGNORE_ENTRYPOINT_TOLERATIONS='[{"Effect":"NoSchedule","KEY":"aws"}]')
    assert config.ignore_entrypoint_tolerations == (("aws", "", "", "NoSchedule", None),)
    assert helm_config(IGNORE_ENTRYPOINT_TOLERATIONS="not json").ignore_entrypoint_tolerations == ()


# --- gate and app id -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "injected"),
    [("true", True), ("TRUE", True), ("yes", False), ("1", False), ("", False)],
)
def test_needs_injection_needs_true(value, injected):
    pod = nodeapp_pod()
    pod["metadata"]["annotations"]["dapr.io/enabled"] = value
    assert needs_injection(pod) is injected


def test_already_injected_pods_are_skipped():
    pod = nodeapp_pod()
    pod["spec"]["initContainers"] = [{"name": "daprd"}]
    assert not needs_injection(pod)
    assert build_patch(pod, helm_config(), namespace="default", trust_anchors=PEM) == []
    assert not needs_injection({}) and not needs_injection("x")


def test_app_id_defaults_to_pod_name():
    pod = nodeapp_pod()
    del pod["metadata"]["annotations"]["dapr.io/app-id"]
    assert (
        "nodeapp-7c9d"
        in sidecar_of(build_patch(pod, helm_config(), namespace="d", trust_anchors=""))["args"]
    )


def test_empty_app_id_message():
    pod = nodeapp_pod()
    pod["metadata"]["annotations"]["dapr.io/app-id"] = ""
    pod["metadata"]["name"] = ""
    with pytest.raises(PatchError, match=r"^value for the dapr\.io/app-id annotation is empty$"):
        build_patch(pod, helm_config(), namespace="d", trust_anchors="")


def test_invalid_app_id_message_is_daprs():
    with pytest.raises(PatchError) as error:
        patch_for({"dapr.io/app-id": "My_App"})
    assert str(error.value) == (
        "invalid app id (input: 'My_App', service: 'My_App-dapr'): a lowercase RFC 1123 label must "
        "consist of lower case alphanumeric characters or '-', and must start and end with an "
        "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    )
    with pytest.raises(PatchError, match="must be no more than 63 characters"):
        patch_for({"dapr.io/app-id": "a" * 59})
    assert "--app-id" in args({"dapr.io/app-id": "a" * 58})


# --- annotations -> args -------------------------------------------------------------------


def after(flag: str, argv: list[str]) -> str:
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize(
    ("annotations", "flag", "value"),
    [
        ({"dapr.io/grpc-port": "6000"}, "--dapr-grpc-port", "6000"),
        ({"dapr.io/grpc-port": "abc"}, "--dapr-grpc-port", "50001"),
        ({"dapr.io/grpc-port": " 6000"}, "--dapr-grpc-port", "50001"),
        ({"dapr.io/internal-grpc-port": "7000"}, "--dapr-internal-grpc-port", "7000"),
        ({"dapr.io/sidecar-listen-addresses": "0.0.0.0"}, "--dapr-listen-addresses", "0.0.0.0"),
        ({"dapr.io/app-protocol": "GRPC"}, "--app-protocol", "GRPC"),
        ({"dapr.io/log-level": "debug"}, "--log-level", "debug"),
        ({"dapr.io/graceful-shutdown-seconds": "+7"}, "--dapr-graceful-shutdown-seconds", "7"),
        ({"dapr.io/metrics-port": "9999"}, "--metrics-port", "9999"),
        ({"dapr.io/app-channel-address": "10.0.0.1"}, "--app-channel-address", "10.0.0.1"),
        ({"dapr.io/placement-host-address": "p:1"}, "--placement-host-address", "p:1"),
        ({"dapr.io/scheduler-host-address": "'s:1'"}, "--scheduler-host-address", "s:1"),
        ({"dapr.io/scheduler-host-address": '""'}, "--scheduler-host-address", ""),
        ({"dapr.io/sentry-request-jwt-audiences": "a,b"}, "--sentry-request-jwt-audiences", "a,b"),
        ({"dapr.io/app-binding-options-timeout": "5s"}, "--app-binding-options-timeout", "5s"),
        ({"dapr.io/app-max-concurrency": "007"}, "--app-max-concurrency", "7"),
        ({"dapr.io/http-max-request-size": "16"}, "--dapr-http-max-request-size", "16"),
        ({"dapr.io/max-body-size": "4Mi"}, "--max-body-size", "4Mi"),
        ({"dapr.io/http-read-buffer-size": "8"}, "--dapr-http-read-buffer-size", "8"),
        ({"dapr.io/read-buffer-size": "8Ki"}, "--read-buffer-size", "8Ki"),
        (
            {"dapr.io/unix-domain-socket-path": "/tmp/s"},
            "--unix-domain-socket",
            "/var/run/dapr-sockets",
        ),
        ({"dapr.io/block-shutdown-duration": "30s"}, "--dapr-block-shutdown-duration", "30s"),
        ({"dapr.io/actors-disseminate-timeout": "2s"}, "--actors-disseminate-timeout", "2s"),
        ({"dapr.io/disable-init-endpoints": "x"}, "--disable-init-endpoints", "x"),
    ],
)
def test_annotation_flags(annotations, flag, value):
    assert after(flag, args(annotations)) == value


@pytest.mark.parametrize(
    ("annotation", "flag"),
    [
        ("dapr.io/log-as-json", "--log-as-json"),
        ("dapr.io/enable-profiling", "--enable-profiling"),
        ("dapr.io/app-ssl", "--app-ssl"),
        ("dapr.io/disable-builtin-k8s-secret-store", "--disable-builtin-k8s-secret-store"),
        ("dapr.io/enable-app-health-check", "--enable-app-health-check"),
    ],
)
def test_boolean_annotations(annotation, flag):
    assert flag in args({annotation: "yes"})
    assert flag not in args({annotation: "no"})


def test_app_health_group_and_api_logging():
    argv = args(
        {"dapr.io/enable-app-health-check": "true", "dapr.io/app-health-probe-interval": "9"}
    )
    start = argv.index("--enable-app-health-check")
    assert argv[start : start + 9] == [
        "--enable-app-health-check",
        "--app-health-check-path",
        "/healthz",
        "--app-health-probe-interval",
        "9",
        "--app-health-probe-timeout",
        "500",
        "--app-health-threshold",
        "3",
    ]
    assert "--enable-api-logging=true" in args({"dapr.io/enable-api-logging": "on"})
    assert "--enable-api-logging=false" in args({"dapr.io/enable-api-logging": ""})
    assert not any(a.startswith("--enable-api-logging") for a in args())


def test_metrics_disabled_and_app_port_zero():
    patch = patch_for({"dapr.io/enable-metrics": "false", "dapr.io/app-port": "0"})
    argv = sidecar_of(patch)["args"]
    assert "--enable-metrics" not in argv and "--app-port" not in argv
    assert {
        "op": "add",
        "path": "/metadata/labels/dapr.io~1metrics-enabled",
        "value": "false",
    } in patch


def test_placement_and_scheduler_rules():
    assert "--placement-host-address" not in args({"dapr.io/placement-host-address": "  "})
    assert "--placement-host-address" not in args(ACTORS_ENABLED="false")
    assert after(
        "--actors-service", args(ACTORS_SERVICE_NAME="acts", ACTORS_SERVICE_ADDRESS="svc:7")
    ) == ("acts:svc.dapr-system.svc.cluster.local:7")
    assert after(
        "--reminders-service", args(REMINDERS_SERVICE_NAME="r", REMINDERS_SERVICE_ADDRESS="rs:9")
    ) == ("r:rs.dapr-system.svc.cluster.local:9")
    assert "--reminders-service" not in args(REMINDERS_SERVICE_NAME="default")
    pod = nodeapp_pod()
    no_scheduler = build_patch(
        pod, helm_config(), namespace="d", trust_anchors="", scheduler_enabled=False
    )
    assert "--scheduler-host-address" not in sidecar_of(no_scheduler)["args"]
    no_mtls = build_patch(pod, helm_config(), namespace="d", trust_anchors="", mtls_enabled=False)
    assert "--enable-mtls" not in sidecar_of(no_mtls)["args"]


def test_debug_wraps_in_delve_and_tolerations_set_command():
    argv = args({"dapr.io/enable-debug": "true", "dapr.io/debug-port": "41000"})
    assert argv[:11] == [
        "/dlv",
        "--listen",
        ":41000",
        "--accept-multiclient",
        "--headless=true",
        "--log",
        "--api-version=2",
        "exec",
        "/daprd",
        "--",
        "--dapr-http-port",
    ]
    pod = nodeapp_pod()
    pod["spec"]["tolerations"] = [{"key": "aws", "effect": "NoSchedule"}]
    config = helm_config(IGNORE_ENTRYPOINT_TOLERATIONS='[{"effect":"NoSchedule","key":"aws"}]')
    sidecar = sidecar_of(build_patch(pod, config, namespace="d", trust_anchors=""))
    assert sidecar["command"] == ["/daprd"] and sidecar["args"][0] == "--dapr-http-port"
    pod["spec"]["tolerations"] = [{"key": "aws", "effect": "NoSchedule", "tolerationSeconds": 5}]
    assert "command" not in sidecar_of(build_patch(pod, config, namespace="d", trust_anchors=""))


# --- env, ports, resources, security -------------------------------------------------------


def test_env_order_with_everything():
    pod = nodeapp_pod()
    pod["metadata"]["annotations"].update(
        {
            "dapr.io/env": "A=1,B=",
            "dapr.io/env-from-secret": "S=sec:key",
            "dapr.io/api-token-secret": "api",
            "dapr.io/app-token-secret": "app",
            "dapr.io/pluggable-components": "comp",
        }
    )
    pod["spec"]["containers"].append({"name": "comp", "image": "c"})
    config = helm_config(ENABLE_K8S_DOWNWARD_APIS="true")
    env = sidecar_of(build_patch(pod, config, namespace="default", trust_anchors=""))["env"]
    assert [e["name"] for e in env] == [
        "NAMESPACE",
        "DAPR_TRUST_ANCHORS",
        "POD_NAME",
        "DAPR_CONTROLPLANE_NAMESPACE",
        "DAPR_CONTROLPLANE_TRUST_DOMAIN",
        "DAPR_HOST_IP",
        "A",
        "B",
        "S",
        "DAPR_ENV_KEYS",
        "DAPR_COMPONENT_SOCKETS_FOLDER",
        "DAPR_API_TOKEN",
        "APP_API_TOKEN",
    ]
    assert env[1] == {"name": "DAPR_TRUST_ANCHORS"}
    assert env[7] == {"name": "B"}
    assert env[8] == {"name": "S", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "key"}}}
    assert env[9] == {"name": "DAPR_ENV_KEYS", "value": "A B S"}
    assert env[11] == {
        "name": "DAPR_API_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}},
    }


def test_resources_and_bad_quantity_drops_all():
    sidecar = sidecar_of(
        patch_for({"dapr.io/sidecar-cpu-limit": "0.5", "dapr.io/sidecar-memory-request": "1024Mi"})
    )
    assert sidecar["resources"] == {"limits": {"cpu": "500m"}, "requests": {"memory": "1Gi"}}
    sidecar = sidecar_of(
        patch_for({"dapr.io/sidecar-cpu-limit": "0.5", "dapr.io/sidecar-memory-limit": "lots"})
    )
    assert sidecar["resources"] == {}


def test_probe_annotations_and_zero_omitted():
    sidecar = sidecar_of(
        patch_for(
            {
                "dapr.io/sidecar-liveness-probe-delay-seconds": "0",
                "dapr.io/sidecar-readiness-probe-threshold": "9",
                "dapr.io/sidecar-readiness-probe-period-seconds": "x",
            }
        )
    )
    assert sidecar["livenessProbe"] == {
        "tcpSocket": {"port": 3501},
        "timeoutSeconds": 3,
        "periodSeconds": 10,
        "failureThreshold": 5,
    }
    assert sidecar["readinessProbe"]["failureThreshold"] == 9
    assert sidecar["readinessProbe"]["periodSeconds"] == 1


def test_security_context_variants():
    sidecar = sidecar_of(
        patch_for(
            {"dapr.io/sidecar-seccomp-profile-type": "RuntimeDefault"},
            SIDECAR_RUN_AS_USER="1000",
            SIDECAR_RUN_AS_GROUP="2000",
            SIDECAR_DROP_ALL_CAPABILITIES="true",
        )
    )
    assert sidecar["securityContext"] == {
        "capabilities": {"drop": ["ALL"]},
        "runAsUser": 1000,
        "runAsGroup": 2000,
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    windows = sidecar_of(
        patch_for({"dapr.io/env": "SSL_CERT_DIR=C:\\certs"}, SIDECAR_RUN_AS_USER="1000")
    )
    assert windows["securityContext"] == {
        "windowsOptions": {"runAsUserName": "ContainerAdministrator"},
        "runAsNonRoot": False,
        "readOnlyRootFilesystem": False,
        "allowPrivilegeEscalation": False,
    }


def test_sidecar_image_annotation_and_debug_port():
    sidecar = sidecar_of(
        patch_for({"dapr.io/sidecar-image": "my/daprd:dev", "dapr.io/enable-debug": "1"})
    )
    assert sidecar["image"] == "my/daprd:dev"
    assert sidecar["ports"][-1] == {"name": "dapr-debug", "containerPort": 40000}


@pytest.mark.parametrize(
    "annotation", ["dapr.io/grpc-port", "dapr.io/metrics-port", "dapr.io/internal-grpc-port"]
)
@pytest.mark.parametrize("value", ["0", "70000", "-1"])
def test_out_of_range_ports_are_refused_with_the_annotation_named(annotation, value):
    with pytest.raises(PatchError, match=annotation):
        patch_for({annotation: value})


def test_app_protocol_env():
    def protocol(annotations):
        ops = [op for op in patch_for(annotations) if op["path"] == "/spec/containers/0/env"]
        return {e["name"]: e.get("value") for e in ops[0]["value"]}.get("APP_PROTOCOL")

    assert protocol({"dapr.io/app-protocol": "GRPC"}) == "grpc"
    assert protocol({"dapr.io/app-protocol": "grpc", "dapr.io/app-ssl": "true"}) == "grpcs"
    assert protocol({"dapr.io/app-protocol": "http", "dapr.io/app-ssl": "true"}) == "https"
    assert protocol({"dapr.io/app-protocol": "h2c"}) == "h2c"
    assert protocol({"dapr.io/app-protocol": ""}) == "http"
    assert protocol({"dapr.io/app-protocol": "smtp"}) is None


# --- volumes, UDS, native sidecar, labels --------------------------------------------------


def test_volume_mounts_annotations():
    pod = nodeapp_pod()
    pod["spec"]["volumes"] = [{"name": "data"}, {"name": "cache"}]
    pod["metadata"]["annotations"].update(
        {
            "dapr.io/volume-mounts": "data:/mnt/data, bad, missing:/x, a:b:c",
            "dapr.io/volume-mounts-rw": "cache:/mnt/cache",
        }
    )
    sidecar = sidecar_of(build_patch(pod, helm_config(), namespace="d", trust_anchors=""))
    assert sidecar["volumeMounts"] == [
        {"name": "data", "readOnly": True, "mountPath": "/mnt/data"},
        {"name": "cache", "mountPath": "/mnt/cache"},
        {
            "name": "dapr-identity-token",
            "readOnly": True,
            "mountPath": "/var/run/secrets/dapr.io/sentrytoken",
        },
    ]


def test_unix_domain_socket():
    pod = nodeapp_pod()
    pod["metadata"]["annotations"]["dapr.io/unix-domain-socket-path"] = "/tmp/sock"
    pod["spec"]["containers"].append(
        {"name": "other", "volumeMounts": [{"name": "x", "mountPath": "/tmp/sock"}]}
    )
    patch = build_patch(pod, helm_config(), namespace="d", trust_anchors="")
    assert patch[0]["value"][0] == {
        "name": "dapr-unix-domain-socket",
        "emptyDir": {"medium": "Memory"},
    }
    assert patch[0]["value"][1]["name"] == "dapr-identity-token"
    assert sidecar_of(patch)["volumeMounts"][0] == {
        "name": "dapr-unix-domain-socket",
        "mountPath": "/var/run/dapr-sockets",
    }
    mounts = [op for op in patch if "volumeMounts" in op["path"]]
    assert mounts == [
        {
            "op": "add",
            "path": "/spec/containers/0/volumeMounts",
            "value": [{"name": "dapr-unix-domain-socket", "mountPath": "/tmp/sock"}],
        }
    ]


def test_native_sidecar_and_labels_and_empty_pod():
    pod = nodeapp_pod()
    pod["metadata"]["annotations"]["dapr.io/enable-native-sidecar"] = "true"
    del pod["metadata"]["labels"]
    patch = build_patch(pod, helm_config(), namespace="d", trust_anchors="")
    paths = [op["path"] for op in patch]
    assert paths[:5] == [
        "/metadata/labels",
        "/spec/volumes",
        "/spec/initContainers",
        "/spec/initContainers/-",
        "/metadata/labels/dapr.io~1sidecar-injected",
    ]
    assert sidecar_of(patch)["restartPolicy"] == "Always"
    overridden = patch_for(
        {"dapr.io/enable-native-sidecar": "false"}, NATIVE_SIDECAR_ENABLED="true"
    )
    assert "restartPolicy" not in sidecar_of(overridden)
    assert sidecar_of(patch_for(NATIVE_SIDECAR_ENABLED="true"))["restartPolicy"] == "Always"
    empty = nodeapp_pod()
    empty["spec"] = {}
    patch = build_patch(empty, helm_config(), namespace="d", trust_anchors="")
    assert patch[0] == {"op": "add", "path": "/spec/containers", "value": []}
    assert not any(op["path"].startswith("/spec/containers/0") for op in patch)


def test_existing_env_only_missing_vars_added_in_container_order():
    pod = nodeapp_pod()
    pod["spec"]["containers"] = [
        {"name": "a", "env": [{"name": "DAPR_HTTP_PORT", "value": "1"}]},
        {"name": "b"},
        {"name": "c", "env": [{"name": "X"}]},
    ]
    patch = build_patch(pod, helm_config(), namespace="d", trust_anchors="")
    env_ops = [(op["path"], op["value"]) for op in patch if "/env" in op["path"]]
    assert env_ops == [
        ("/spec/containers/0/env/-", {"name": "DAPR_GRPC_PORT", "value": "50001"}),
        ("/spec/containers/0/env/-", {"name": "APP_PROTOCOL", "value": "http"}),
        (
            "/spec/containers/1/env",
            [
                {"name": "DAPR_HTTP_PORT", "value": "3500"},
                {"name": "DAPR_GRPC_PORT", "value": "50001"},
                {"name": "APP_PROTOCOL", "value": "http"},
            ],
        ),
        ("/spec/containers/2/env/-", {"name": "DAPR_HTTP_PORT", "value": "3500"}),
        ("/spec/containers/2/env/-", {"name": "DAPR_GRPC_PORT", "value": "50001"}),
        ("/spec/containers/2/env/-", {"name": "APP_PROTOCOL", "value": "http"}),
    ]
    again = build_patch(pod, helm_config(), namespace="d", trust_anchors="")
    assert again == patch


# --- bad pods ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.__setitem__("spec", "nope"),
        lambda p: p["spec"].__setitem__("containers", {"a": 1}),
        lambda p: p["spec"]["containers"].append(5),
        lambda p: p["spec"]["containers"][0].__setitem__("env", "x"),
        lambda p: p["metadata"].__setitem__("labels", {"a": 1}),
        lambda p: p["spec"].__setitem__("volumes", [{"name": 3}]),
    ],
)
def test_ill_typed_pods_are_patch_errors(mutate):
    pod = nodeapp_pod()
    mutate(pod)
    with pytest.raises(PatchError, match="could not unmarshal raw object"):
        build_patch(pod, helm_config(), namespace="d", trust_anchors="")


def test_giant_annotations_are_handled():
    big = ",".join(f"K{i}=v{i}" for i in range(20000))
    env = env_of({"dapr.io/env": big, "dapr.io/sidecar-cpu-limit": "1" * 5000})
    assert len(env) == 5 + 20000 + 1
