import pytest

from router.model import NodeInfo, RouterError, great_circle_km, validate_node
from tests.router.helpers import info


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"latitude_deg": 91.0}, "node.latitude_deg=91.0 is out of range [-90, 90]"),
        ({"longitude_deg": -181.0}, "node.longitude_deg=-181.0 is out of range [-180, 180]"),
        ({"latitude_deg": float("nan")}, "node.latitude_deg=nan"),
        ({"capabilities": ["onsets", "telepathy"]}, "node.capabilities has unknown telepathy"),
        ({"metadata": {"k": "x" * 5000}}, "node.metadata is 5009 bytes as JSON; at most 4096"),
        ({"address": "nohostport"}, "node.address='nohostport' is invalid"),
        ({"address": "h:70000"}, "node.address='h:70000' is invalid"),
        ({"node_id": "bad id"}, "node.node_id='bad id' is invalid"),
        ({"provider": "oracle"}, "node.provider='oracle' is unknown"),
        ({"capacity": 0}, "node.capacity=0 is out of range"),
    ],
)
def test_bad_node_fields_are_named(change: dict[str, object], needle: str) -> None:
    d = info().to_json() | change
    with pytest.raises(RouterError) as e:
        NodeInfo.from_json(d)
    assert needle in e.value.message


def test_missing_field() -> None:
    d = info().to_json()
    del d["address"]
    with pytest.raises(RouterError, match="node.address is required"):
        NodeInfo.from_json(d)


def test_round_trip_and_distance() -> None:
    n = info(metadata={"rack": "r1"})
    assert NodeInfo.from_json(n.to_json()) == validate_node(n)
    # New York - London, ~5570 km
    assert great_circle_km(40.71, -74.01, 51.51, -0.13) == pytest.approx(5570, rel=0.01)
