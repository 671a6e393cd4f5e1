"""daprplane on one machine: ``daprplane up`` runs a control plane, ``daprplane status`` reports.

Nothing here is a component: these are tools around the launchers. ``up`` runs the launchers as
child processes (the same commands a cluster runs), so what it starts behaves exactly as the
deployed components do.
"""
