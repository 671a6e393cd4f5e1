"""Adds a ``sample`` component, takes part in the injector's hooks and observes the operator.

It imports only ``daprplane.plugin``, the surface daprplane offers plugin authors. The
``sample`` component is a real, if small, service: it registers a healthz target, serves
``GET /sample`` on the healthz port with the ``--greeting`` flag's value, and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from daprplane import plugin

ANNOTATION = "sample.daprplane.dev/greeting"


async def run(context: plugin.ComponentContext) -> None:
    greeting = context.flags.greeting
    pause = context.flags["startup-delay"]

    async def sample(_: web.Request) -> web.Response:
        return web.json_response({"greeting": greeting, "ready": context.health.healthy()})

    context.health.add_route("GET", "/sample", sample)
    target = context.health.add_target("sample-ready")
    await asyncio.sleep(pause.total_seconds())
    target.ready()
    context.logger.info("sample component ready: %s", greeting)
    try:
        await context.stopping.wait()
    finally:
        context.logger.info("sample component stopping")


async def fail(context: plugin.ComponentContext) -> None:
    raise plugin.FatalError("sample failure requested")


@plugin.hookimpl
def daprplane_register_components() -> list[plugin.ComponentSpec]:
    return [
        plugin.ComponentSpec(
            name="sample",
            summary="A sample third-party component",
            run=run,
            flags=(
                plugin.string("greeting", "hello", "What GET /sample answers"),
                plugin.duration("startup-delay", "0s", "How long to stay not-ready at start"),
                plugin.boolean("shout", False, "Unused; exercises boolean parsing"),
                plugin.string_slice("tags", ("a", "b"), "Unused; exercises string slices"),
            ),
            scope="dapr.sample",
        ),
        plugin.ComponentSpec(
            name="sample-fatal",
            summary="A sample component that fails at start",
            run=fail,
        ),
        plugin.ComponentSpec(
            name="sample-needs-extra",
            summary="A sample component whose extra is not installed",
            run="daprplane_sample_missing_module:run",
            extra="sample-extra",
            requires=("daprplane_sample_missing_module",),
        ),
    ]


@plugin.hookimpl
def daprplane_injector_annotations() -> list[str]:
    return [ANNOTATION]


@plugin.hookimpl
def daprplane_injector_edit_sidecar(
    sidecar: plugin.Container, pod: plugin.Pod, annotations: Mapping[str, str]
) -> None:
    greeting = annotations.get(ANNOTATION)
    if greeting:
        sidecar.setdefault("env", []).append({"name": "SAMPLE_GREETING", "value": greeting})


@plugin.hookimpl
def daprplane_operator_resource_changed(kind: str, event: str, resource: Mapping[str, Any]) -> None:
    # An audit trail in one line per change.
    name = (resource.get("metadata") or {}).get("name")
    logging.getLogger("dapr.sample").info("sample saw %s %s %s", kind, event.lower(), name)
