"""``daprplane status`` for a control plane that ``daprplane up`` runs on this machine.

Everything comes from the components themselves: ``/healthz``, their Prometheus metrics
(placement's leadership and runtime count) and placement's ``/placement/state`` (table versions),
plus the CA files in the state directory for certificate expiry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from daprplane.core.local import record as records
from daprplane.core.local.certs import certificate_file, describe_expiry
from daprplane.core.local.layout import StateDir
from daprplane.core.local.report import CertificateStatus, ComponentStatus, StatusReport
from daprplane.core.local.supervisor import fetch

_TIMEOUT = 3.0


def metric_values(text: str) -> dict[str, float]:
    """Unlabelled sample values by name (labelled samples are summed)."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def table_versions(state: Any) -> dict[str, str]:
    """``namespace -> "v<version>, <n> hosts"`` from a ``/placement/state`` document."""
    tables = state.get("tables", {}) if isinstance(state, dict) else {}
    return {
        f"table[{namespace or '(none)'}]": (
            f"v{table.get('version', 0)}, {len(table.get('hosts', []))} hosts"
        )
        for namespace, table in sorted(tables.items())
        if isinstance(table, dict)
    }


def _placement_details(host: str, component: records.RunningComponent) -> dict[str, str]:
    details: dict[str, str] = {}
    metrics = fetch(f"http://{host}:{component.metrics_port}/metrics", _TIMEOUT)
    if metrics is not None:
        values = metric_values(metrics.decode(errors="replace"))
        leader = values.get("dapr_placement_leader_status")
        if leader is not None:
            details["leader"] = "yes" if leader else "no"
        runtimes = values.get("dapr_placement_runtimes_total")
        if runtimes is not None:
            details["sidecars"] = str(int(runtimes))
    state = fetch(f"http://{host}:{component.healthz_port}/placement/state", _TIMEOUT)
    if state is not None:
        try:
            versions = table_versions(json.loads(state))
        except ValueError:
            versions = {}
        details.update(versions or {"tables": "none yet"})
    return details


def _component_status(up: records.UpRecord, component: records.RunningComponent) -> ComponentStatus:
    host = up.listen_address
    running = records.process_alive(component.pid)
    healthz = f"http://{host}:{component.healthz_port}/healthz"
    healthy = running and fetch(healthz, _TIMEOUT) is not None
    details = {"address": component.address}
    if running and component.name == "placement":
        details.update(_placement_details(host, component))
    return ComponentStatus(component.name, running, healthy, f"pid {component.pid}", details)


def local_status(state: StateDir) -> StatusReport:
    report = StatusReport("local", str(state.root))
    try:
        up = records.read(state.record)
    except records.RecordError as error:
        report.problems.append(str(error))
        return report
    if up is None:
        report.problems.append(
            f"nothing is running: no daprplane up with state directory {state.root}"
        )
        return report
    if not records.process_alive(up.pid):
        report.problems.append(
            f"stale record: the daprplane up that wrote {state.record} (pid {up.pid}) is gone"
        )
    report.components = [_component_status(up, component) for component in up.components]
    anchors = Path(up.trust_anchors)
    certificates = [("root (anchors)", anchors)]
    if up.mode == "standalone":  # in a cluster, the issuer lives in the dapr-trust-bundle Secret
        certificates.append(("issuer", anchors.with_name("issuer.crt")))
    for name, path in certificates:
        expires = describe_expiry(certificate_file(path)) if path.exists() else "missing"
        report.certificates.append(CertificateStatus(name, str(path), expires))
    return report
