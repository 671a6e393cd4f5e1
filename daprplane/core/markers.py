"""The pluggy markers: one project name for specs and implementations."""

import pluggy

PROJECT = "daprplane"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorate plugin functions with ``@daprplane.hookimpl`` to implement a hook.
hookimpl = pluggy.HookimplMarker(PROJECT)
