"""The placement client: connects like daprd, keeps one ring per actor type, locates actors.

``PlacementClient`` is the public entry point; the state machine (:mod:`.protocol`) and the
table of rings (:mod:`.tables`) are usable on their own, without a server.
"""

from daprplane.plugins.placement.client.client import (
    DisseminationTimeoutError,
    PlacementClient,
    StreamClosedError,
)
from daprplane.plugins.placement.client.credentials import (
    ChannelCredentials,
    InsecureCredentials,
    MtlsCredentials,
    placement_id,
)
from daprplane.plugins.placement.client.protocol import (
    API_LEVEL,
    ClientProtocol,
    Phase,
    ProtocolError,
)
from daprplane.plugins.placement.client.tables import (
    ActorTables,
    ActorTypeNotFoundError,
    NoHostsError,
    Placement,
    PlacementNotReadyError,
    TypeTable,
    build_tables,
)

__all__ = [
    "API_LEVEL",
    "ActorTables",
    "ActorTypeNotFoundError",
    "ChannelCredentials",
    "ClientProtocol",
    "DisseminationTimeoutError",
    "InsecureCredentials",
    "MtlsCredentials",
    "NoHostsError",
    "Phase",
    "Placement",
    "PlacementClient",
    "PlacementNotReadyError",
    "ProtocolError",
    "StreamClosedError",
    "TypeTable",
    "build_tables",
    "placement_id",
]
