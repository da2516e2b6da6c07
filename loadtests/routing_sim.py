"""Routing simulation: every strategy against the same fleet, clients and failures.

    python -m loadtests.routing_sim [--clients 10000] [--seed 7] [--repeats 3]

Fleet: 54 nodes in 9 edge zones of 3 providers (AWS Wavelength, Azure Edge Zones, GCP edge),
capacities 80-300 sessions, provider-dependent cost. Clients: 10,000 arrivals (Poisson) from
the 9 metro areas (scattered +-3 degrees), demand per metro proportional to the zone's capacity
x U(0.85, 1.15); arrivals over 600 s, sessions last Exp(mean 450 s): about 7,500 concurrent at
the end, ~80 % of the fleet's capacity.
Latency model ("measured-style"): RTT = (8 ms access + distance/100 km per ms) x LogNormal(0,
0.25) + 2 ms / (1 - utilization) of server queueing. Nodes report load every 1 s (heartbeat);
the router counts what it sent since. At 30 % of the run 5 nodes crash (their clients re-route;
the registry drops them after the 3 s TTL; meanwhile clients fail over and report failures),
at 60 % 5 new nodes join. A client tries up to 3 ranked nodes; a node at capacity refuses;
"refused" counts clients that got no session. Imbalance = median over 1 s samples (after the
first 25 %) of max/mean utilization over live nodes.
Prints a table per strategy, then one JSON line {strategy: {p50_ms, p95_ms, imbalance, refused}}.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
from dataclasses import dataclass, field

from router.core import Router
from router.model import NodeInfo, NodeLoad, NodeRecord, great_circle_km
from router.strategies import STRATEGIES, RouteRequest

ZONES = [  # (zone, provider, region, lat, lon)
    ("us-east-1-wl1-nyc-wlz-1", "aws", "us-east", 40.71, -74.01),
    ("us-west-2-wl1-lax-wlz-1", "aws", "us-west", 34.05, -118.24),
    ("ap-northeast-1-wl1-nrt-wlz-1", "aws", "ap-northeast", 35.68, 139.69),
    ("chicago-edge-zone", "azure", "us-central", 41.88, -87.63),
    ("london-edge-zone", "azure", "eu-west", 51.51, -0.13),
    ("seattle-edge-zone", "azure", "us-northwest", 47.61, -122.33),
    ("europe-west3-fra-edge", "gcp", "eu-central", 50.11, 8.68),
    ("us-south1-dfw-edge", "gcp", "us-south", 32.78, -96.80),
    ("asia-southeast1-sin-edge", "gcp", "ap-southeast", 1.35, 103.82),
]
COST_PER_100 = {"aws": 1.00, "azure": 0.92, "gcp": 0.86}
CAPACITIES = (80, 120, 200, 300)
ACCESS_MS, KM_PER_MS = 8.0, 100.0


@dataclass
class SimNode:
    info: NodeInfo
    alive: bool = True
    active: int = 0
    reported: int = 0
    util_area: float = 0.0


@dataclass(order=True)
class Event:
    t: float
    kind: str = field(compare=False)
    data: object = field(compare=False, default=None)


def make_fleet(rng: random.Random) -> list[SimNode]:
    nodes = []
    for zi, (zone, prov, region, lat, lon) in enumerate(ZONES):
        for k in range(6):
            cap = rng.choice(CAPACITIES)
            nodes.append(_node(f"{prov}-{zi}-{k}", zone, prov, region, lat, lon, cap, rng))
    return nodes


def _node(
    nid: str,
    zone: str,
    prov: str,
    region: str,
    lat: float,
    lon: float,
    cap: int,
    rng: random.Random,
) -> SimNode:
    info = NodeInfo(
        node_id=nid,
        address=f"10.0.0.1:{50000 + len(nid)}",
        provider=prov,
        zone=zone,
        region=region,
        latitude_deg=lat + rng.uniform(-0.2, 0.2),
        longitude_deg=lon + rng.uniform(-0.2, 0.2),
        capabilities=frozenset({"onsets", "features", "notes"}),
        capacity=cap,
        cost_per_hour=COST_PER_100[prov] * cap / 100 * rng.uniform(0.9, 1.1),
    )
    return SimNode(info)


def simulate(strategy: str, n_clients: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    fleet = make_fleet(rng)
    by_id = {n.info.node_id: n for n in fleet}
    zone_cap = {z[0]: sum(n.info.capacity for n in fleet if n.info.zone == z[0]) for z in ZONES}
    weights = [zone_cap[z[0]] * rng.uniform(0.85, 1.15) for z in ZONES]
    mean_session_s = 450.0
    rate = n_clients / 600.0
    now = 0.0
    records: dict[str, NodeRecord] = {}
    ttl_s = 3.0
    dead_since: dict[str, float] = {}

    def registry_view() -> list[NodeRecord]:
        return [
            r
            for nid, r in records.items()
            if nid not in dead_since or now - dead_since[nid] < ttl_s
        ]

    def refresh_records() -> None:
        for n in fleet:
            if (
                not n.alive
                and n.info.node_id in dead_since
                and now - dead_since[n.info.node_id] >= ttl_s
            ):
                records.pop(n.info.node_id, None)
                continue
            if n.alive:
                n.reported = n.active
                records[n.info.node_id] = NodeRecord(
                    info=n.info, load=NodeLoad(active_sessions=n.active), updated_at=now
                )
                router.load_reported(n.info.node_id)

    router = Router(registry_view, default_strategy=strategy, clock=lambda: now, seed=seed)
    events: list[Event] = []
    t = 0.0
    for i in range(n_clients):
        t += rng.expovariate(rate)
        heapq.heappush(events, Event(t, "arrive", i))
    horizon = t
    for k in range(1, int(horizon) + 2):
        heapq.heappush(events, Event(float(k), "tick"))
    heapq.heappush(events, Event(0.3 * horizon, "fail"))
    heapq.heappush(events, Event(0.6 * horizon, "join"))
    refresh_records()

    latencies: list[float] = []
    refused = 0
    failovers = 0
    imbalance_samples: list[float] = []
    max_util = 0.0
    last_t = 0.0
    clients: dict[int, tuple[float, float, str]] = {}
    sessions: dict[int, str] = {}

    def connect(cid: int) -> bool:
        nonlocal refused, failovers, max_util
        lat, lon, region = clients[cid]
        req = RouteRequest(latitude_deg=lat, longitude_deg=lon, region=region, max_nodes=3)
        for ranked in router.pick(req):
            node = by_id[ranked.record.info.node_id]
            if not node.alive:
                failovers += 1
                router.report(client_key=region, node_id=node.info.node_id, rtt_ms=None, ok=False)
                continue
            if node.active >= node.info.capacity:
                continue  # RESOURCE_EXHAUSTED from the node
            node.active += 1
            router.assigned(node.info.node_id)
            util = node.active / node.info.capacity
            max_util = max(max_util, util)
            dist = great_circle_km(lat, lon, node.info.latitude_deg, node.info.longitude_deg)
            rtt = (ACCESS_MS + dist / KM_PER_MS) * math.exp(rng.gauss(0.0, 0.25))
            rtt += 2.0 / max(0.05, 1.0 - min(util, 0.95))
            latencies.append(rtt)
            router.report(client_key=region, node_id=node.info.node_id, rtt_ms=rtt, ok=True)
            sessions[cid] = node.info.node_id
            heapq.heappush(events, Event(now + rng.expovariate(1 / mean_session_s), "leave", cid))
            return True
        refused += 1
        return False

    while events:
        ev = heapq.heappop(events)
        for n in fleet:
            if n.alive:
                n.util_area += (n.active / n.info.capacity) * (ev.t - last_t)
        now, last_t = ev.t, ev.t
        if ev.kind == "arrive":
            cid = int(ev.data)  # type: ignore[call-overload]
            zi = rng.choices(range(len(ZONES)), weights)[0]
            z = ZONES[zi]
            clients[cid] = (z[3] + rng.uniform(-3, 3), z[4] + rng.uniform(-3, 3), z[2])
            connect(cid)
        elif ev.kind == "leave":
            cid = int(ev.data)  # type: ignore[call-overload]
            nid = sessions.pop(cid, None)
            if nid is not None and by_id[nid].alive:
                by_id[nid].active -= 1
        elif ev.kind == "tick":
            refresh_records()
            if now > 0.25 * horizon:
                live = [n.active / n.info.capacity for n in fleet if n.alive]
                mean = statistics.fmean(live)
                if mean > 0:
                    imbalance_samples.append(max(live) / mean)
        elif ev.kind == "fail":
            victims = rng.sample([n for n in fleet if n.alive], 5)
            for v in victims:
                v.alive = False
                dead_since[v.info.node_id] = now
                orphans = [c for c, nid in sessions.items() if nid == v.info.node_id]
                v.active = 0
                for c in orphans:
                    del sessions[c]
                    connect(c)
        elif ev.kind == "join":
            for k in range(5):
                z = ZONES[rng.randrange(len(ZONES))]
                n = _node(f"new-{k}", z[0], z[1], z[2], z[3], z[4], rng.choice(CAPACITIES), rng)
                fleet.append(n)
                by_id[n.info.node_id] = n
            refresh_records()
    lat_sorted = sorted(latencies)
    return {
        "p50_ms": round(lat_sorted[len(lat_sorted) // 2], 2),
        "p95_ms": round(lat_sorted[int(0.95 * (len(lat_sorted) - 1))], 2),
        "imbalance": round(statistics.median(imbalance_samples), 3),
        "refused": refused,
        "failovers": failovers,
        "max_utilization": round(max_util, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeats", type=int, default=3, help="seeds seed..seed+repeats-1; medians")
    a = p.parse_args()
    results: dict[str, dict[str, float]] = {}
    print(
        "| strategy | p50 ms | p95 ms | imbalance (max/mean util) | refused | failovers "
        "| max util |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in STRATEGIES:
        runs = [simulate(name, a.clients, a.seed + r) for r in range(a.repeats)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        results[name] = med
        print(
            f"| {name} | {med['p50_ms']:.1f} | {med['p95_ms']:.1f} | {med['imbalance']:.3f} | "
            f"{med['refused']:.0f} | {med['failovers']:.0f} | {med['max_utilization']:.3f} |",
            flush=True,
        )
    rr = results["round-robin"]["p95_ms"]
    best = min(
        (n for n in results if results[n]["imbalance"] <= 1.2),
        key=lambda n: results[n]["p95_ms"],
        default=None,
    )
    if best:
        print(
            f"best balanced strategy: {best}, p95 {results[best]['p95_ms'] / rr:.2f} x round-robin"
        )
    print(
        json.dumps(
            {
                n: {k: r[k] for k in ("p50_ms", "p95_ms", "imbalance", "refused")}
                for n, r in results.items()
            }
        )
    )


if __name__ == "__main__":
    main()
