from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Location(_message.Message):
    __slots__ = ("latitude_deg", "longitude_deg")
    LATITUDE_DEG_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_DEG_FIELD_NUMBER: _ClassVar[int]
    latitude_deg: float
    longitude_deg: float
    def __init__(self, latitude_deg: _Optional[float] = ..., longitude_deg: _Optional[float] = ...) -> None: ...

class PickNodeRequest(_message.Message):
    __slots__ = ("location", "zone", "region", "capabilities", "max_nodes", "strategy", "client_id")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    MAX_NODES_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    location: Location
    zone: str
    region: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    max_nodes: int
    strategy: str
    client_id: str
    def __init__(self, location: _Optional[_Union[Location, _Mapping]] = ..., zone: _Optional[str] = ..., region: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ..., max_nodes: _Optional[int] = ..., strategy: _Optional[str] = ..., client_id: _Optional[str] = ...) -> None: ...

class RankedNode(_message.Message):
    __slots__ = ("node_id", "address", "http_address", "provider", "zone", "region", "score", "expected_rtt_ms", "active_sessions", "capacity")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HTTP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_RTT_MS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    address: str
    http_address: str
    provider: str
    zone: str
    region: str
    score: float
    expected_rtt_ms: float
    active_sessions: int
    capacity: int
    def __init__(self, node_id: _Optional[str] = ..., address: _Optional[str] = ..., http_address: _Optional[str] = ..., provider: _Optional[str] = ..., zone: _Optional[str] = ..., region: _Optional[str] = ..., score: _Optional[float] = ..., expected_rtt_ms: _Optional[float] = ..., active_sessions: _Optional[int] = ..., capacity: _Optional[int] = ...) -> None: ...

class PickNodeResponse(_message.Message):
    __slots__ = ("nodes", "strategy", "from_cache")
    NODES_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    FROM_CACHE_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[RankedNode]
    strategy: str
    from_cache: bool
    def __init__(self, nodes: _Optional[_Iterable[_Union[RankedNode, _Mapping]]] = ..., strategy: _Optional[str] = ..., from_cache: _Optional[bool] = ...) -> None: ...

class ReportRttRequest(_message.Message):
    __slots__ = ("node_id", "client_id", "region", "rtt_ms", "success")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    client_id: str
    region: str
    rtt_ms: float
    success: bool
    def __init__(self, node_id: _Optional[str] = ..., client_id: _Optional[str] = ..., region: _Optional[str] = ..., rtt_ms: _Optional[float] = ..., success: _Optional[bool] = ...) -> None: ...

class ReportRttResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
