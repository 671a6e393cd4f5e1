"""The operator process: fatal start-up errors, graceful stop, leader election between two
replicas, and streams that survive an API-server restart and a compacted watch."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from daprplane._proto.operator.v1 import operator_pb2 as pb
from tests.integration.launchers import free_port, run
from tests.integration.operator.conftest import (
    ControlPlane,
    Operator,
    Sidecar,
    control_plane_in,
    dapr_path,
    run_operator,
)
from tests.integration.operator.test_operator_api import component, create
from tests.integration.operator.test_operator_services import service, workload
from tests.k8s.cluster import KubeCluster, raw_request
from tests.k8s.helpers import wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

FAST_LEASE = {
    "DAPRPLANE_OPERATOR_LEASE_DURATION": "3s",
    "DAPRPLANE_OPERATOR_LEASE_RENEW_DEADLINE": "2s",
    "DAPRPLANE_OPERATOR_LEASE_RETRY_PERIOD": "500ms",
}


def test_namespace_is_required() -> None:
    result = run("daprplane-operator", f"--healthz-port={free_port()}", "--enable-metrics=false")
    assert result.returncode == 1
    assert "'NAMESPACE' environment variable not set" in result.stdout


def test_bad_watch_interval_is_fatal() -> None:
    result = run(
        "daprplane-operator",
        "--watch-interval=500ms",
        f"--healthz-port={free_port()}",
        "--enable-metrics=false",
        env={"NAMESPACE": "dapr-system"},
    )
    assert result.returncode == 1
    assert "--watch-interval" in result.stdout


def test_missing_system_configuration_is_fatal(control_plane: ControlPlane) -> None:
    with run_operator(control_plane, "--config=absent", wait_healthy=False) as operator:
        assert operator.process.wait(timeout=60) == 1
    # The log line is logfmt: the API server's quotes arrive escaped.
    assert 'configurations.dapr.io \\"absent\\" not found' in operator.output()


def test_sigint_stops_gracefully(control_plane: ControlPlane) -> None:
    with run_operator(control_plane, "--disable-leader-election") as operator:
        assert operator.stop(signal.SIGINT) == 0
    assert "shut down gracefully" in operator.output()


def _leader(operators: list[Operator]) -> Operator:
    leading = [op for op in operators if "Leading" in op.output()]
    assert len(leading) == 1, [op.output() for op in operators]
    return leading[0]


def test_two_replicas_one_leader_and_a_takeover(
    control_plane: ControlPlane, kube_namespace: str, kube_api: Any
) -> None:
    env = {"ENABLE_WEBHOOKS": "false", **FAST_LEASE}
    with (
        run_operator(control_plane, env=env, name="first") as first,
        run_operator(control_plane, env=env, name="second") as second,
    ):
        leader = wait_for(lambda: _leader([first, second]), message="a leader")
        follower = second if leader is first else first
        enabled = {"dapr.io/enabled": "true", "dapr.io/app-id": "one"}
        create_workload(kube_api, kube_namespace, "one", enabled)
        wait_for(lambda: service(kube_api, kube_namespace, "one-dapr"), message="one-dapr")
        assert "Created service" in leader.output()
        assert "Created service" not in follower.output()

        assert leader.stop() == 0
        wait_for(lambda: "Leading" in follower.output(), timeout=20, message="a takeover")
        enabled = {"dapr.io/enabled": "true", "dapr.io/app-id": "two"}
        create_workload(kube_api, kube_namespace, "two", enabled)
        wait_for(lambda: service(kube_api, kube_namespace, "two-dapr"), message="two-dapr")
        assert follower.stop() == 0
    lease = raw_request(
        kube_api,
        "GET",
        f"/apis/coordination.k8s.io/v1/namespaces/{control_plane.namespace}/leases/operator.dapr.io",
    )
    # The last leader released the Lease when it stopped.
    assert not lease["spec"].get("holderIdentity")


def create_workload(api: Any, namespace: str, name: str, annotations: dict[str, str]) -> None:
    body = workload("deployments", name, annotations)
    raw_request(api, "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body=body)


@pytest.fixture(scope="module")
def restart_plane(kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with control_plane_in(kube_cluster, Path(tmp_path_factory.mktemp("restart"))) as plane:
        yield plane


async def test_stream_survives_api_server_restart_and_compaction(
    restart_plane: ControlPlane, kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any
) -> None:
    create(kube_api, kube_namespace, "components", component("before"))
    with run_operator(
        restart_plane, "--disable-leader-election", env={"ENABLE_WEBHOOKS": "false"}
    ) as operator:
        async with Sidecar(operator, "app", kube_namespace).stub() as stub:
            stream = stub.ComponentUpdate(pb.ComponentUpdateRequest(namespace=kube_namespace))
            reads = asyncio.ensure_future(_read_events(stream, 2))
            await asyncio.sleep(1.0)

            # Not in a worker thread: the API server dies with the thread that started it.
            kube_cluster.restart_apiserver(2.0)
            # Changes made as soon as the API server is back, then compacted away: whether the
            # operator's watch resumes after them or has to list again (410), it reports both.
            create(kube_api, kube_namespace, "components", component("after"))
            raw_request(kube_api, "DELETE", dapr_path(kube_namespace, "components", "before"))
            kube_cluster.compact()
            events = await asyncio.wait_for(reads, 90)
            assert sorted(events) == [(pb.CREATED, "after"), (pb.DELETED, "before")]
            stream.cancel()

            # The control plane's Configuration disappearing is not fatal once started.
            system = f"/apis/dapr.io/v1alpha1/namespaces/{restart_plane.namespace}"
            raw_request(kube_api, "DELETE", f"{system}/configurations/daprsystem")
            create(kube_api, kube_namespace, "components", component("later"))
            names: list[str] = []
            for _ in range(100):
                response = await stub.ListComponents(
                    pb.ListComponentsRequest(namespace=kube_namespace)
                )
                names = [json.loads(item)["metadata"]["name"] for item in response.components]
                if "later" in names:
                    break
                await asyncio.sleep(0.1)
            assert names == ["after", "later"]
        assert operator.stop() == 0


async def _read_events(stream: Any, count: int) -> list[tuple[int, str]]:
    events = []
    for _ in range(count):
        message = await stream.read()
        events.append((message.type, json.loads(message.component)["metadata"]["name"]))
    return events
