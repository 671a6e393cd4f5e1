"""The injector config of the contract's worked example (§4.6) and its pod, for patch tests."""

from __future__ import annotations

import copy
from typing import Any

from daprplane.plugins.injector.config import InjectorConfig

PEM = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"

HELM_ENV = {
    "NAMESPACE": "dapr-system",
    "KUBE_CLUSTER_DOMAIN": "cluster.local",
    "DAPR_CONTROL_PLANE_TRUST_DOMAIN": "cluster.local",
    "SIDECAR_IMAGE": "ghcr.io/dapr/daprd:1.18.3",
    "SIDECAR_IMAGE_PULL_POLICY": "IfNotPresent",
    "SIDECAR_RUN_AS_NON_ROOT": "true",
    "SIDECAR_READ_ONLY_ROOT_FILESYSTEM": "true",
    "ACTORS_ENABLED": "true",
    "ACTORS_SERVICE_NAME": "placement",
    "ACTORS_SERVICE_ADDRESS": "dapr-placement-server:50005",
}

NODEAPP: dict[str, Any] = {
    "metadata": {
        "name": "nodeapp-7c9d",
        "namespace": "default",
        "labels": {"app": "node"},
        "annotations": {
            "dapr.io/enabled": "true",
            "dapr.io/app-id": "nodeapp",
            "dapr.io/app-port": "3000",
            "dapr.io/config": "tracing",
        },
    },
    "spec": {
        "containers": [
            {
                "name": "node",
                "image": "dapriosamples/hello-k8s-node:latest",
                "ports": [{"containerPort": 3000}],
            }
        ]
    },
}


def helm_config(**overrides: str) -> InjectorConfig:
    return InjectorConfig.from_environ({**HELM_ENV, **overrides})


def nodeapp_pod() -> dict[str, Any]:
    return copy.deepcopy(NODEAPP)


def with_annotations(pod: dict[str, Any], **annotations: str) -> dict[str, Any]:
    pod["metadata"]["annotations"].update(
        {f"dapr.io/{key.replace('_', '-')}": value for key, value in annotations.items()}
    )
    return pod
