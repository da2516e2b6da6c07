from __future__ import annotations

from router.model import NodeInfo, NodeLoad, NodeRecord


def info(
    node_id: str = "n1",
    *,
    address: str = "127.0.0.1:5001",
    lat: float = 40.7,
    lon: float = -74.0,
    caps: tuple[str, ...] = ("onsets", "features"),
    capacity: int = 100,
    cost: float = 1.0,
    zone: str = "z1",
    region: str = "us-east",
    provider: str = "aws",
    metadata: dict[str, str] | None = None,
) -> NodeInfo:
    return NodeInfo(
        node_id=node_id,
        address=address,
        provider=provider,
        zone=zone,
        region=region,
        latitude_deg=lat,
        longitude_deg=lon,
        capabilities=frozenset(caps),
        capacity=capacity,
        cost_per_hour=cost,
        metadata=metadata or {},
    )


def record(node_id: str, *, active: int = 0, **kw: object) -> NodeRecord:
    return NodeRecord(
        info=info(node_id, **kw), load=NodeLoad(active_sessions=active), updated_at=0.0
    )  # type: ignore[arg-type]
