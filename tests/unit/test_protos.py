"""The generated stubs: up to date, named like Dapr's, numbered like Dapr's, same bytes on the wire.

The expected tables below are written from the contracts (placement.md §2.1, sentry.md §3.1,
operator.md §2.3), not read back from the stubs, so a drift in a .proto file fails here.
"""

from __future__ import annotations

import importlib.util
import re
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor

from daprplane._proto.operator.v1 import operator_pb2, operator_pb2_grpc
from daprplane._proto.placement.v1 import placement_pb2, placement_pb2_grpc, state_pb2
from daprplane._proto.sentry.v1 import sentry_pb2, sentry_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]

PLC = ".dapr.proto.placement.v1."
SEN = ".dapr.proto.sentry.v1."
OPR = ".dapr.proto.operator.v1."

# message -> {field: (number, type, flags)}; flags: repeated, optional (has presence), deprecated.
FIELDS: dict[str, dict[str, tuple[int, str, frozenset[str]]]] = {}


def _msg(message: str, /, **fields: tuple[int, str] | tuple[int, str, str]) -> None:
    FIELDS[message.lstrip(".")] = {
        field: (spec[0], spec[1], frozenset(spec[2].split()) if len(spec) > 2 else frozenset())
        for field, spec in fields.items()
    }


_msg(
    PLC + "PlacementOrder",
    tables=(1, PLC + "PlacementTables"),
    operation=(2, "string"),
    version=(3, "uint64"),
)
_msg(
    PLC + "PlacementTables",
    entries=(1, f"map<string,{PLC}PlacementTable>"),
    version=(2, "string", "deprecated"),
    api_level=(3, "uint32", "deprecated"),
    replication_factor=(4, "int64"),
)
_msg(
    PLC + "PlacementTable",
    hosts=(1, "map<uint64,string>", "deprecated"),
    sorted_set=(2, "uint64", "repeated deprecated"),
    load_map=(3, f"map<string,{PLC}Host>"),
    total_load=(4, "int64", "deprecated"),
)
_msg(
    PLC + "Host",
    name=(1, "string"),
    port=(2, "int64"),
    load=(3, "int64", "deprecated"),
    entities=(4, "string", "repeated"),
    id=(5, "string"),
    pod=(6, "string", "deprecated"),
    api_level=(7, "uint32", "deprecated"),
    namespace=(8, "string"),
    operation=(9, PLC + "HostOperation"),
    version=(10, "uint64", "optional"),
)
_msg(PLC + "StatePlacementTables", tables=(1, f"map<string,{PLC}StatePlacementTable>"))
_msg(PLC + "StatePlacementTable", hosts=(1, PLC + "Host", "repeated"), version=(2, "uint64"))

_msg(
    SEN + "SignCertificateRequest",
    id=(1, "string"),
    token=(2, "string"),
    trust_domain=(3, "string"),
    namespace=(4, "string"),
    certificate_signing_request=(5, "bytes"),
    token_validator=(6, SEN + "SignCertificateRequest.TokenValidator"),
    jwt_audiences=(7, "string", "repeated"),
)
_msg(
    SEN + "SignCertificateResponse",
    workload_certificate=(1, "bytes"),
    trust_chain_certificates=(2, "bytes", "repeated"),
    valid_until=(3, ".google.protobuf.Timestamp"),
    jwt=(4, ".google.protobuf.StringValue", "optional"),
    per_audience_jwts=(5, "map<string,.google.protobuf.StringValue>"),
)

_EVENT = OPR + "ResourceEventType"
for _kind, _payload in [
    ("Component", "component"),
    ("Configuration", "configuration"),
    ("Subscription", "subscription"),
    ("Resiliency", "resiliency"),
    ("HTTPEndpoint", "http_endpoints"),
    ("MCPServer", "mcp_server"),
    ("WorkflowAccessPolicy", "policy"),
]:
    _msg(f"{OPR}{_kind}UpdateRequest", namespace=(1, "string"))
    _msg(f"{OPR}{_kind}UpdateEvent", **{_payload: (1, "bytes"), "type": (2, _EVENT)})
for _request, _response, _payload in [
    ("ListComponentsRequest", "ListComponentResponse", "components"),
    ("ListResiliencyRequest", "ListResiliencyResponse", "resiliencies"),
    ("ListHTTPEndpointsRequest", "ListHTTPEndpointsResponse", "http_endpoints"),
    ("ListMCPServersRequest", "ListMCPServersResponse", "mcp_servers"),
    ("ListWorkflowAccessPolicyRequest", "ListWorkflowAccessPolicyResponse", "policies"),
]:
    _msg(OPR + _request, namespace=(1, "string"))
    _msg(OPR + _response, **{_payload: (1, "bytes", "repeated")})
_msg(OPR + "ListSubscriptionsRequest", namespace=(2, "string"))
_msg(OPR + "ListSubscriptionsResponse", subscriptions=(1, "bytes", "repeated"))
_msg(OPR + "GetConfigurationRequest", name=(1, "string"), namespace=(2, "string"))
_msg(OPR + "GetConfigurationResponse", configuration=(1, "bytes"))
_msg(OPR + "GetResiliencyRequest", name=(1, "string"), namespace=(2, "string"))
_msg(OPR + "GetResiliencyResponse", resiliency=(1, "bytes"))

ENUMS = {
    "dapr.proto.placement.v1.HostOperation": {
        "UNKNOWN": 0,
        "REPORT": 1,
        "LOCK": 2,
        "UPDATE": 3,
        "UNLOCK": 4,
    },
    "dapr.proto.sentry.v1.SignCertificateRequest.TokenValidator": {
        "UNKNOWN": 0,
        "INSECURE": 1,
        "KUBERNETES": 2,
        "JWKS": 3,
    },
    "dapr.proto.operator.v1.ResourceEventType": {
        "UNKNOWN": 0,
        "CREATED": 1,
        "UPDATED": 2,
        "DELETED": 3,
    },
}

# method path -> (request, response, client streams, server streams)
_OPERATOR_UNARY = {
    "ListComponents": ("ListComponentsRequest", "ListComponentResponse"),
    "GetConfiguration": ("GetConfigurationRequest", "GetConfigurationResponse"),
    "GetResiliency": ("GetResiliencyRequest", "GetResiliencyResponse"),
    "ListResiliency": ("ListResiliencyRequest", "ListResiliencyResponse"),
    "ListSubscriptionsV2": ("ListSubscriptionsRequest", "ListSubscriptionsResponse"),
    "ListHTTPEndpoints": ("ListHTTPEndpointsRequest", "ListHTTPEndpointsResponse"),
    "ListMCPServers": ("ListMCPServersRequest", "ListMCPServersResponse"),
    "ListWorkflowAccessPolicy": (
        "ListWorkflowAccessPolicyRequest",
        "ListWorkflowAccessPolicyResponse",
    ),
}
METHODS = {
    "/dapr.proto.placement.v1.Placement/ReportDaprStatus": (
        PLC + "Host",
        PLC + "PlacementOrder",
        True,
        True,
    ),
    "/dapr.proto.sentry.v1.CA/SignCertificate": (
        SEN + "SignCertificateRequest",
        SEN + "SignCertificateResponse",
        False,
        False,
    ),
    "/dapr.proto.operator.v1.Operator/ListSubscriptions": (
        ".google.protobuf.Empty",
        OPR + "ListSubscriptionsResponse",
        False,
        False,
    ),
    **{
        f"/dapr.proto.operator.v1.Operator/{m}": (OPR + req, OPR + resp, False, False)
        for m, (req, resp) in _OPERATOR_UNARY.items()
    },
    **{
        f"/dapr.proto.operator.v1.Operator/{kind}Update": (
            f"{OPR}{kind}UpdateRequest",
            f"{OPR}{kind}UpdateEvent",
            False,
            True,
        )
        for kind in [
            "Component",
            "Configuration",
            "Subscription",
            "Resiliency",
            "HTTPEndpoint",
            "MCPServer",
            "WorkflowAccessPolicy",
        ]
    },
}

FILES = [
    placement_pb2.DESCRIPTOR,
    state_pb2.DESCRIPTOR,
    sentry_pb2.DESCRIPTOR,
    operator_pb2.DESCRIPTOR,
]

_SCALAR = {
    getattr(FieldDescriptor, n): n[5:].lower()
    for n in dir(FieldDescriptor)
    if n.startswith("TYPE_")
}


def _type(field: FieldDescriptor) -> str:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return "." + field.message_type.full_name
    if field.type == FieldDescriptor.TYPE_ENUM:
        return "." + field.enum_type.full_name
    return _SCALAR[field.type]


def _describe(field: FieldDescriptor) -> tuple[int, str, frozenset[str]]:
    flags = set()
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        kind = f"map<{_type(entry.fields_by_name['key'])},{_type(entry.fields_by_name['value'])}>"
    else:
        kind = _type(field)
        if field.is_repeated:
            flags.add("repeated")
        oneof = field.containing_oneof
        if oneof is not None and oneof.name == "_" + field.name:  # proto3 `optional`
            flags.add("optional")
    if field.GetOptions().deprecated:
        flags.add("deprecated")
    return field.number, kind, frozenset(flags)


def _all_messages():
    def walk(message):
        yield message
        for nested in message.nested_types:
            if not nested.GetOptions().map_entry:
                yield from walk(nested)

    for file in FILES:
        for message in file.message_types_by_name.values():
            yield from walk(message)


def test_every_message_and_field_matches_the_contract():
    found = {m.full_name: {f.name: _describe(f) for f in m.fields} for m in _all_messages()}
    assert found == FIELDS


def test_enums_match_the_contract():
    found = {}
    for file in FILES:
        enums = list(file.enum_types_by_name.values())
        for message in file.message_types_by_name.values():
            enums += message.enum_types
        for enum in enums:
            found[enum.full_name] = {v.name: v.number for v in enum.values}
    assert found == ENUMS


def test_services_and_method_paths():
    found = {}
    for file in FILES:
        for service in file.services_by_name.values():
            for m in service.methods:
                path = f"/{service.full_name}/{m.name}"
                found[path] = (
                    "." + m.input_type.full_name,
                    "." + m.output_type.full_name,
                    m.client_streaming,
                    m.server_streaming,
                )
    assert found == METHODS
    assert placement_pb2.DESCRIPTOR.services_by_name["Placement"].full_name == (
        "dapr.proto.placement.v1.Placement"
    )
    assert sentry_pb2.DESCRIPTOR.services_by_name["CA"].full_name == "dapr.proto.sentry.v1.CA"
    assert operator_pb2.DESCRIPTOR.services_by_name["Operator"].full_name == (
        "dapr.proto.operator.v1.Operator"
    )


def test_reserved_fields_of_removed_pod_names():
    from google.protobuf import descriptor_pb2

    file = descriptor_pb2.FileDescriptorProto()
    operator_pb2.DESCRIPTOR.CopyToProto(file)
    reserved = {
        m.name: ([(r.start, r.end - 1) for r in m.reserved_range], list(m.reserved_name))
        for m in file.message_type
        if m.reserved_range or m.reserved_name
    }
    assert reserved == {
        "ListComponentsRequest": ([(2, 2)], ["podName"]),
        "ListSubscriptionsRequest": ([(1, 1)], []),
        "HTTPEndpointUpdateRequest": ([(2, 2)], []),
    }


# Hand-computed encodings: tag byte = field_number << 3 | wire_type.
HOST = placement_pb2.Host(
    name="10.0.0.1:50002",
    port=50002,
    entities=["a"],
    id="app",
    api_level=20,
    namespace="ns",
    operation=placement_pb2.LOCK,
    version=0,
)
HOST_BYTES = (
    b"\x0a\x0e10.0.0.1:50002"  # 1 name
    b"\x10\xd2\x86\x03"  # 2 port: 50002 = 0x52 | 0x06 << 7 | 0x03 << 14
    b"\x22\x01a"  # 4 entities
    b"\x2a\x03app"  # 5 id
    b"\x38\x14"  # 7 api_level (deprecated, still sent by daprd)
    b"\x42\x02ns"  # 8 namespace
    b"\x48\x02"  # 9 operation LOCK
    b"\x50\x00"  # 10 version: optional, so an explicit 0 is on the wire
)
ORDER = placement_pb2.PlacementOrder(
    operation="update",
    version=3,
    tables=placement_pb2.PlacementTables(
        entries={"t": placement_pb2.PlacementTable(load_map={"h": placement_pb2.Host(port=1)})},
        replication_factor=100,
    ),
)
ORDER_BYTES = (
    b"\x0a\x12"  # 1 tables: PlacementTables, 18 bytes
    b"\x0a\x0e"  # entries: one map entry, 14 bytes
    b"\x0a\x01t"  # key "t"
    b"\x12\x09"  # value: PlacementTable, 9 bytes
    b"\x1a\x07"  # load_map: one map entry, 7 bytes
    b"\x0a\x01h"  # key "h"
    b"\x12\x02\x10\x01"  # value: Host{port: 1}
    b"\x20\x64"  # replication_factor 100
    b"\x12\x06update"  # 2 operation
    b"\x18\x03"  # 3 version
)
SIGN_REQUEST = sentry_pb2.SignCertificateRequest(
    id="app",
    namespace="ns",
    certificate_signing_request=b"PEM",
    token_validator=sentry_pb2.SignCertificateRequest.KUBERNETES,
    jwt_audiences=["a", "b"],
)
SIGN_REQUEST_BYTES = b"\x0a\x03app\x22\x02ns\x2a\x03PEM\x30\x02\x3a\x01a\x3a\x01b"


def _sign_response() -> sentry_pb2.SignCertificateResponse:
    response = sentry_pb2.SignCertificateResponse(
        workload_certificate=b"C",
        trust_chain_certificates=[b"R"],
    )
    response.valid_until.seconds = 1
    response.jwt.SetInParent()  # present but empty
    response.per_audience_jwts["td"].value = "t"
    return response


SIGN_RESPONSE_BYTES = (
    b"\x0a\x01C\x12\x01R"
    b"\x1a\x02\x08\x01"  # 3 valid_until {seconds: 1}
    b"\x22\x00"  # 4 jwt: present, empty StringValue
    b"\x2a\x09\x0a\x02td\x12\x03\x0a\x01t"  # 5 per_audience_jwts {"td": {value: "t"}}
)
EVENT = operator_pb2.ComponentUpdateEvent(component=b"{}", type=operator_pb2.UPDATED)
EVENT_BYTES = b"\x0a\x02{}\x10\x02"


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (HOST, HOST_BYTES),
        (ORDER, ORDER_BYTES),
        (SIGN_REQUEST, SIGN_REQUEST_BYTES),
        (_sign_response(), SIGN_RESPONSE_BYTES),
        (EVENT, EVENT_BYTES),
        (operator_pb2.ListSubscriptionsRequest(namespace="ns"), b"\x12\x02ns"),
    ],
    ids=["host", "order", "sign-request", "sign-response", "component-event", "subs-v2"],
)
def test_wire_vectors(message, wire):
    assert message.SerializeToString(deterministic=True) == wire
    assert type(message).FromString(wire) == message


def test_old_sidecar_pod_name_is_ignored():
    # Sidecars before the field was removed still send podName (2) in ListComponentsRequest.
    request = operator_pb2.ListComponentsRequest.FromString(b"\x0a\x02ns\x12\x03pod")
    assert request.namespace == "ns"


class _Placement(placement_pb2_grpc.PlacementServicer):
    def ReportDaprStatus(self, request_iterator, context):
        for host in request_iterator:
            assert host == HOST
            yield ORDER


class _CA(sentry_pb2_grpc.CAServicer):
    def SignCertificate(self, request, context):
        assert request == SIGN_REQUEST
        return _sign_response()


class _Operator(operator_pb2_grpc.OperatorServicer):
    def ComponentUpdate(self, request, context):
        assert request.namespace == "ns"
        yield EVENT


@pytest.fixture(scope="module")
def channel():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    placement_pb2_grpc.add_PlacementServicer_to_server(_Placement(), server)
    sentry_pb2_grpc.add_CAServicer_to_server(_CA(), server)
    operator_pb2_grpc.add_OperatorServicer_to_server(_Operator(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as chan:
        yield chan
    server.stop(None)


def test_served_paths_speak_the_wire_vectors(channel):
    # Raw bytes on Dapr's method paths: the generated servicers must answer them.
    sign = channel.unary_unary("/dapr.proto.sentry.v1.CA/SignCertificate")
    assert sign(SIGN_REQUEST_BYTES, timeout=5) == SIGN_RESPONSE_BYTES

    report = channel.stream_stream("/dapr.proto.placement.v1.Placement/ReportDaprStatus")
    assert list(report(iter([HOST_BYTES]), timeout=5)) == [ORDER_BYTES]

    updates = channel.unary_stream("/dapr.proto.operator.v1.Operator/ComponentUpdate")
    assert list(updates(b"\x0a\x02ns", timeout=5)) == [EVENT_BYTES]


def test_unimplemented_operator_rpc_is_unimplemented(channel):
    # daprd treats Unimplemented from an older operator as "no resources" (e.g. MCPServers).
    stub = operator_pb2_grpc.OperatorStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.ListMCPServers(operator_pb2.ListMCPServersRequest(namespace="ns"), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def _load_generator():
    path = REPO_ROOT / "tools" / "gen_protos.py"
    spec = importlib.util.spec_from_file_location("gen_protos", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_are_what_the_generator_writes():
    pytest.importorskip("grpc_tools", reason="grpcio-tools is not installed; run `nox -s protos`")
    from importlib.metadata import version

    stub = (REPO_ROOT / "daprplane/_proto/placement/v1/placement_pb2_grpc.py").read_text()
    committed_with = re.search(r"GRPC_GENERATED_VERSION = '([^']+)'", stub).group(1)
    installed = version("grpcio-tools")
    if installed != committed_with:
        pytest.skip(
            f"stubs were generated by grpcio-tools {committed_with}, {installed} is "
            "installed; `nox -s protos` pins the right one"
        )
    problems = _load_generator().stale_files()
    assert not problems, "stale stubs, run `nox -s protos`:\n" + "\n".join(problems)
