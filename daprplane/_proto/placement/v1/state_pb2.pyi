from daprplane._proto.placement.v1 import placement_pb2 as _placement_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatePlacementTables(_message.Message):
    __slots__ = ("tables",)
    class TablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: StatePlacementTable
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[StatePlacementTable, _Mapping]] = ...) -> None: ...
    TABLES_FIELD_NUMBER: _ClassVar[int]
    tables: _containers.MessageMap[str, StatePlacementTable]
    def __init__(self, tables: _Optional[_Mapping[str, StatePlacementTable]] = ...) -> None: ...

class StatePlacementTable(_message.Message):
    __slots__ = ("hosts", "version")
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[_placement_pb2.Host]
    version: int
    def __init__(self, hosts: _Optional[_Iterable[_Union[_placement_pb2.Host, _Mapping]]] = ..., version: _Optional[int] = ...) -> None: ...
