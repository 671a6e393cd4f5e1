"""The host's own hooks: adding components, adding hook specs, and handing plugins settings.

A plugin is a module (or object) listed in the ``daprplane.plugins`` entry-point group whose
functions carry ``@daprplane.plugin.hookimpl`` and are named after hook specs. The hooks here are
the host's; each component's own hooks live beside it (``daprplane/plugins/<component>/
hookspecs.py``) and are added by its :func:`daprplane_addhooks` when the component loads, as
pytest's plugins add theirs through ``pytest_addhooks``. Hooks are synchronous, as pluggy's
are: a hook that needs to do I/O returns a coroutine factory, which the host awaits.

Hook results are validated by the caller (a wrong type is reported against the plugin that
returned it); see ``docs/plugins.md`` for order, failure policy and examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from daprplane.core.markers import hookspec

if TYPE_CHECKING:
    import pluggy

    from daprplane.core.component import ComponentSpec


@hookspec(historic=True)
def daprplane_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    """Add this plugin's own hook specs: ``pluginmanager.add_hookspecs(my_hookspecs)``.

    Called once for each plugin, when it registers (a historic hook). The built-in components
    add theirs this way; a third-party component that offers hooks to other plugins does the
    same. Implementations registered before the specs that name them are checked when the
    specs arrive: one that does not fit is reported against its own plugin, which is unloaded.
    """


@hookspec
def daprplane_register_components() -> Sequence[ComponentSpec]:
    """Return the components this plugin adds: name, flags and async entry point.

    Called once for each plugin, right after it registers, for that plugin alone. Each
    :class:`~daprplane.core.component.ComponentSpec` becomes a ``daprplane <name>`` subcommand;
    the built-ins also have their own console scripts (``daprplane-placement`` ...). Two plugins
    registering the same name is an error reported against the second one; the first keeps the
    name.
    """


@hookspec(historic=True)
def daprplane_configure(environ: Mapping[str, str]) -> None:
    """Read this plugin's settings, once, from the host's environment.

    Called once for each plugin, when it registers (a historic hook), with the environment the
    host was started with (a launcher's process environment). Read every setting here rather
    than from ``os.environ`` while serving: the same environment then configures the component
    and its plugins, and tests can hand the host one of their own. A setting that is wrong
    should raise here, which unloads the plugin with the reason.
    """
