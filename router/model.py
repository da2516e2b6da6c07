"""Edge nodes as the router sees them, and the validation of what nodes and clients send."""

from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

CAPABILITIES = frozenset(
    {"onsets", "features", "notes", "refined-notes", "feedback", "webrtc", "opus"}
)
PROVIDERS = frozenset({"aws", "azure", "gcp", "local"})
MAX_METADATA_BYTES = 4096
_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]{1,253}:[0-9]{1,5}$")


class ErrorKind(enum.Enum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    NOT_FOUND = "NOT_FOUND"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAVAILABLE = "UNAVAILABLE"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"


class RouterError(Exception):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def invalid(message: str) -> RouterError:
    return RouterError(ErrorKind.INVALID_ARGUMENT, message)


@dataclass(frozen=True, kw_only=True)
class NodeLoad:
    """What a node reports with each heartbeat."""

    active_sessions: int = 0
    cpu_fraction: float = 0.0
    p95_latency_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class NodeInfo:
    """A registered edge node. ``address`` is its gRPC HOST:PORT; ``capacity`` is in sessions;
    ``cost_per_hour`` in any currency unit, compared only between nodes."""

    node_id: str
    address: str
    provider: str
    zone: str
    region: str
    latitude_deg: float
    longitude_deg: float
    capabilities: frozenset[str]
    capacity: int
    cost_per_hour: float = 0.0
    http_address: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["capabilities"] = sorted(self.capabilities)
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> NodeInfo:
        """Parse and validate (raises :class:`RouterError` naming the field)."""
        try:
            info = NodeInfo(
                node_id=str(d["node_id"]),
                address=str(d["address"]),
                provider=str(d.get("provider", "local")),
                zone=str(d.get("zone", "")),
                region=str(d.get("region", "")),
                latitude_deg=float(d.get("latitude_deg", 0.0)),
                longitude_deg=float(d.get("longitude_deg", 0.0)),
                capabilities=frozenset(str(c) for c in d.get("capabilities", ())),
                capacity=int(d.get("capacity", 0)),
                cost_per_hour=float(d.get("cost_per_hour", 0.0)),
                http_address=str(d.get("http_address", "")),
                metadata={str(k): str(v) for k, v in dict(d.get("metadata", {})).items()},
            )
        except KeyError as e:
            raise invalid(f"node.{e.args[0]} is required") from None
        except (TypeError, ValueError, OverflowError) as e:  # Overflow: int() of infinity
            raise invalid(f"node: malformed field ({e})") from None
        return validate_node(info)


@dataclass(frozen=True, kw_only=True)
class NodeRecord:
    """A node with its last reported load, as listed by a registry."""

    info: NodeInfo
    load: NodeLoad
    #: registry clock (s since epoch) of the last registration or heartbeat
    updated_at: float

    def with_load(self, load: NodeLoad, at: float) -> NodeRecord:
        return replace(self, load=load, updated_at=at)


def check_coordinates(lat: float, lon: float, *, field_prefix: str) -> None:
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise invalid(f"{field_prefix}latitude_deg={lat} is out of range [-90, 90]")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise invalid(f"{field_prefix}longitude_deg={lon} is out of range [-180, 180]")


def check_capabilities(caps: frozenset[str] | set[str], *, field_name: str) -> None:
    unknown = sorted(set(caps) - CAPABILITIES)
    if unknown:
        raise invalid(
            f"{field_name} has unknown {', '.join(unknown)}; "
            f"known: {', '.join(sorted(CAPABILITIES))}"
        )


def validate_node(n: NodeInfo) -> NodeInfo:
    if not _ID.match(n.node_id):
        raise invalid(f"node.node_id={n.node_id[:70]!r} is invalid; 1..64 of [A-Za-z0-9._-]")
    if not _ADDRESS.match(n.address) or not 0 < int(n.address.rsplit(":", 1)[1]) < 65536:
        raise invalid(f"node.address={n.address[:80]!r} is invalid; expected HOST:PORT")
    if n.provider not in PROVIDERS:
        raise invalid(
            f"node.provider={n.provider!r} is unknown; known: {', '.join(sorted(PROVIDERS))}"
        )
    check_coordinates(n.latitude_deg, n.longitude_deg, field_prefix="node.")
    check_capabilities(n.capabilities, field_name="node.capabilities")
    if not 1 <= n.capacity <= 1_000_000:
        raise invalid(f"node.capacity={n.capacity} is out of range [1, 1000000]")
    if not (math.isfinite(n.cost_per_hour) and n.cost_per_hour >= 0):
        raise invalid(f"node.cost_per_hour={n.cost_per_hour} must be finite and >= 0")
    for name, value in (("zone", n.zone), ("region", n.region)):
        if len(value) > 64:
            raise invalid(f"node.{name} has {len(value)} characters; at most 64")
    size = len(json.dumps(n.metadata))
    if size > MAX_METADATA_BYTES:
        raise invalid(f"node.metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES}")
    return n


def validate_load(load: NodeLoad) -> NodeLoad:
    """``load`` if its fields have the right types and ranges (it may come from JSON)."""
    n = load.active_sessions
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise invalid(f"load.active_sessions={n!r} must be an integer >= 0")
    for name in ("cpu_fraction", "p95_latency_ms"):
        v = getattr(load, name)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise invalid(f"load.{name}={v!r} must be a number")
    if not (math.isfinite(load.cpu_fraction) and 0.0 <= load.cpu_fraction <= 64.0):
        raise invalid(f"load.cpu_fraction={load.cpu_fraction} is out of range [0, 64]")
    if not (math.isfinite(load.p95_latency_ms) and load.p95_latency_ms >= 0):
        raise invalid(f"load.p95_latency_ms={load.p95_latency_ms} must be finite and >= 0")
    return load


EARTH_RADIUS_KM = 6371.0088


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
