"""What ``daprplane status`` found, as one structure: printed as a table or as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import click


@dataclass
class ComponentStatus:
    name: str
    running: bool
    healthy: bool
    #: Where it runs: ``pid 123`` locally, ``2/3 ready`` in a cluster.
    where: str
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class CertificateStatus:
    name: str
    source: str
    expires: str


@dataclass
class StatusReport:
    mode: str  # "local" or "cluster"
    source: str  # the state directory or the cluster's namespace and server
    components: list[ComponentStatus] = field(default_factory=list)
    certificates: list[CertificateStatus] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.running and c.healthy for c in self.components)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "ok": self.ok}, indent=2)


def _health(component: ComponentStatus) -> str:
    if not component.running:
        return click.style("not running", fg="red")
    if not component.healthy:
        return click.style("unhealthy", fg="red")
    return click.style("healthy", fg="green")


def render_text(report: StatusReport) -> str:
    lines = [f"daprplane ({report.mode}): {report.source}", ""]
    if report.components:
        width = max(len(c.name) for c in report.components) + 2
        where = max(len(c.where) for c in report.components) + 2
        lines.append(f"  {'COMPONENT':<{width}}{'RUNS':<{where}}{'HEALTH':<13}DETAILS")
        for component in report.components:
            health = _health(component)
            # Styling adds invisible characters; pad by the visible text's length.
            padding = " " * max(13 - len(click.unstyle(health)), 1)
            details = ", ".join(f"{key} {value}" for key, value in component.details.items())
            lines.append(
                f"  {component.name:<{width}}{component.where:<{where}}{health}{padding}{details}"
            )
    if report.certificates:
        lines += ["", "  CERTIFICATE       EXPIRES                               SOURCE"]
        for certificate in report.certificates:
            lines.append(f"  {certificate.name:<18}{certificate.expires:<38}{certificate.source}")
    for problem in report.problems:
        lines.append(click.style(f"\n  {problem}", fg="yellow"))
    return "\n".join(lines)
