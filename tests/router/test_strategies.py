import pytest

from router.core import Router
from router.model import RouterError
from router.strategies import RouteRequest
from tests.router.helpers import record

NYC = (40.71, -74.01)
LON = (51.51, -0.13)


def _router(nodes: list, strategy: str = "weighted", now: list[float] | None = None) -> Router:  # type: ignore[type-arg]
    clock = now or [0.0]
    return Router(lambda: nodes, default_strategy=strategy, clock=lambda: clock[0], seed=1)


def test_capability_filter_comes_first() -> None:
    nodes = [record("a", caps=("onsets",)), record("b", caps=("onsets", "notes"))]
    for s in ("round-robin", "random", "least-load", "latency-p2c", "proximity", "weighted"):
        ranked = _router(nodes, s).pick(RouteRequest(capabilities=frozenset({"notes"})))
        assert [r.record.info.node_id for r in ranked] == ["b"], s


def test_round_robin_rotates() -> None:
    r = _router([record("a"), record("b"), record("c")], "round-robin")
    firsts = [r.pick(RouteRequest())[0].record.info.node_id for _ in range(4)]
    assert firsts == ["a", "b", "c", "a"]


def test_least_load_uses_utilization_and_skips_full_nodes() -> None:
    nodes = [
        record("a", active=50, capacity=100),
        record("b", active=30, capacity=40),
        record("c", active=100, capacity=100),
    ]
    ranked = _router(nodes, "least-load").pick(RouteRequest())
    assert [r.record.info.node_id for r in ranked] == ["a", "b"]


def test_proximity_orders_by_distance() -> None:
    nodes = [record("lon", lat=LON[0], lon=LON[1]), record("nyc", lat=NYC[0], lon=NYC[1])]
    ranked = _router(nodes, "proximity").pick(RouteRequest(latitude_deg=41.0, longitude_deg=-73.0))
    assert ranked[0].record.info.node_id == "nyc"


def test_weighted_prefers_near_until_it_runs_hot() -> None:
    near = record("nyc", lat=NYC[0], lon=NYC[1], active=10)
    far = record("chi", lat=41.88, lon=-87.63, active=10)
    req = RouteRequest(latitude_deg=NYC[0], longitude_deg=NYC[1], region="us-east")
    assert _router([near, far]).pick(req)[0].record.info.node_id == "nyc"
    hot = record("nyc", lat=NYC[0], lon=NYC[1], active=90)
    assert _router([hot, far]).pick(req)[0].record.info.node_id == "chi"


def test_observed_rtt_overrides_the_distance_prior() -> None:
    a = record("a", lat=NYC[0], lon=NYC[1])
    b = record("b", lat=NYC[0], lon=NYC[1])
    r = _router([a, b], "latency-p2c")
    for _ in range(5):
        r.report(client_key="us-east", node_id="a", rtt_ms=80.0, ok=True)
        r.report(client_key="us-east", node_id="b", rtt_ms=9.0, ok=True)
    req = RouteRequest(latitude_deg=NYC[0], longitude_deg=NYC[1], region="us-east")
    assert all(r.pick(req)[0].record.info.node_id == "b" for _ in range(20))


def test_outlier_ejection_and_return() -> None:
    now = [0.0]
    r = _router([record("a"), record("b", active=50)], "least-load", now)
    for _ in range(3):
        r.report(client_key="x", node_id="a", rtt_ms=None, ok=False)
    assert [n.record.info.node_id for n in r.pick(RouteRequest())] == ["b"]
    now[0] = 11.0  # first ejection lasts 10 s
    assert r.pick(RouteRequest())[0].record.info.node_id == "a"


@pytest.mark.parametrize(
    ("req", "needle"),
    [
        (RouteRequest(latitude_deg=100.0, longitude_deg=0.0), "location.latitude_deg=100.0"),
        (RouteRequest(latitude_deg=1.0), "give both latitude_deg and longitude_deg"),
        (RouteRequest(capabilities=frozenset({"x-ray"})), "capabilities has unknown x-ray"),
        (RouteRequest(max_nodes=0), "max_nodes=0 is out of range [1, 50]"),
    ],
)
def test_bad_route_requests(req: RouteRequest, needle: str) -> None:
    with pytest.raises(RouterError) as e:
        _router([record("a")]).pick(req)
    assert needle in e.value.message


def test_a_load_report_keeps_the_clients_sent_within_its_lag() -> None:
    now = [0.0]
    r = _router([record("a"), record("b")], now=now)
    r.assigned("a")  # t = 0
    now[0] = 0.8
    r.assigned("a")  # t = 0.8
    now[0] = 1.5
    r.load_reported("a", lag_s=1.0)  # sampled after t = 0.5 at the latest: the 0.8 one stays
    assert r.pending == {"a": 1}
    r.load_reported("a")  # an exact report (the simulation's) includes every client
    assert r.pending == {}
