"""Ranking strategies. Each takes the eligible nodes (capability-filtered, not ejected, below
capacity where load is known) and returns them best first."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .model import NodeRecord, great_circle_km
from .stats import RouterStats


@dataclass(frozen=True, kw_only=True)
class RouteRequest:
    """A client asking where to connect. ``region`` (or the zone) keys the RTT observations."""

    latitude_deg: float | None = None
    longitude_deg: float | None = None
    zone: str = ""
    region: str = ""
    capabilities: frozenset[str] = frozenset()
    max_nodes: int = 3
    client_id: str = ""

    @property
    def client_key(self) -> str:
        return self.region or self.zone or "unknown"


@dataclass
class RouteContext:
    stats: RouterStats
    now_s: float
    #: sessions routed to each node since its last load report (reports lag behind)
    pending: dict[str, int] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def load(self, r: NodeRecord) -> int:
        return r.load.active_sessions + self.pending.get(r.info.node_id, 0)

    def utilization(self, r: NodeRecord) -> float:
        return self.load(r) / max(1, r.info.capacity)

    def rtt_ms(self, r: NodeRecord, req: RouteRequest) -> float:
        lat, lon = req.latitude_deg, req.longitude_deg
        return self.stats.expected_rtt_ms(
            req.client_key, r.info.node_id, lat, lon, r.info.latitude_deg, r.info.longitude_deg
        )


class Strategy(Protocol):
    name: str

    def rank(
        self, nodes: Sequence[NodeRecord], req: RouteRequest, ctx: RouteContext
    ) -> list[NodeRecord]: ...


class RoundRobin:
    name = "round-robin"

    def __init__(self) -> None:
        self._next = 0

    def rank(
        self, nodes: Sequence[NodeRecord], req: RouteRequest, ctx: RouteContext
    ) -> list[NodeRecord]:
        if not nodes:
            return []
        ordered = sorted(nodes, key=lambda r: r.info.node_id)
        k = self._next % len(ordered)
        self._next += 1
        return ordered[k:] + ordered[:k]


class RandomChoice:
    name = "random"

    def rank(
        self, nodes: Sequence[NodeRecord], req: RouteRequest, ctx: RouteContext
    ) -> list[NodeRecord]:
        out = list(nodes)
        ctx.rng.shuffle(out)
        return out


class LeastLoad:
    name = "least-load"

    def rank(
        self, nodes: Sequence[NodeRecord], req: RouteRequest, ctx: RouteContext
    ) -> list[NodeRecord]:
        return sorted(nodes, key=lambda r: (ctx.utilization(r), r.info.node_id))


class PeakEwmaP2C:
    """Latency: power of two random choices by cost = peak-EWMA RTT x (1 + utilization), as
    Finagle/Linkerd balance, within an aperture of the nodes whose expected RTT is at most
    ``1.5 x best + 5 ms`` (P2C over a whole multi-continent fleet would pick far nodes half the
    time); the rest follow by cost."""

    name = "latency-p2c"

    def _cost(self, r: NodeRecord, req: RouteRequest, ctx: RouteContext) -> float:
        return ctx.rtt_ms(r, req) * (1.0 + ctx.utilization(r))

    def rank(
        self, nodes: Sequence[NodeRecord], req: RouteRequest, ctx: RouteContext
    ) -> list[NodeRecord]:
        if len(nodes) <= 1:
            return list(nodes)
        rtts = {r.info.node_id: ctx.rtt_ms(r, req) for r in nodes}
        limit = 1.5 * min(rtts.values()) + 5.0
        aperture = [r for r in nodes if rtts[r.info.node_id] <= limit]
        if len(aperture) < 2:
            aperture = sorted(nodes, key=lambda r: rtts[r.info.node_id])[:2]
        a, b = ctx.rng.sample(aperture, 2)
        first = a if self._cost(a, req, ctx) <= self._cost(b, req, ctx) else b
        rest = sorted((r for r in nodes if r is not first), key=lambda r: self._cost(r, req, ctx))
        return [first, *rest]


class Proximity:
    """Nearest first by great-circle distance from the client's location; without one, nodes
    of the client's zone, then its region, then the rest."""

    name = "proximity"

    def rank(
        self, nodes: Sequence[NodeRecord], req: RouteRequest, ctx: RouteContext
    ) -> list[NodeRecord]:
        if req.latitude_deg is not None and req.longitude_deg is not None:
            lat, lon = req.latitude_deg, req.longitude_deg
            return sorted(
                nodes,
                key=lambda r: great_circle_km(lat, lon, r.info.latitude_deg, r.info.longitude_deg),
            )
        return sorted(
            nodes,
            key=lambda r: (
                r.info.zone != req.zone,
                r.info.region != req.region,
                ctx.utilization(r),
            ),
        )


@dataclass(frozen=True, kw_only=True)
class Weights:
    latency: float = 0.4
    capacity: float = 0.3
    reliability: float = 0.2
    cost: float = 0.1


class WeightedScore:
    """Adaptive score in [0, 1], higher first, each term relative to the other candidates:

    * latency: ``1 - (rtt - best_rtt) / latency_budget_ms`` (floored at 0): nodes a few ms
      apart are nearly equal, a node a budget away scores 0;
    * capacity: load relative to the candidates' mean utilization ``x = u / u_mean``; 1 at
      ``x <= 1 - tolerance``, 0.5 at the mean, 0 at ``1 + tolerance``, negative beyond (down
      to -2), so a node running hotter than the fleet sheds clients to neighbours even when
      they are further away;
    * reliability: ``1 - failure EWMA`` from client reports;
    * cost: cheapest cost per session-hour (``cost_per_hour / capacity``) / this node's.
    """

    name = "weighted"

    def __init__(
        self,
        weights: Weights | None = None,
        *,
        latency_budget_ms: float = 150.0,
        balance_tolerance: float = 0.1,
    ) -> None:
        self.weights = weights or Weights()
        self.latency_budget_ms = latency_budget_ms
        self.balance_tolerance = balance_tolerance

    def scores(
        self, nodes: Sequence[NodeRecord], req: RouteRequest, ctx: RouteContext
    ) -> list[float]:
        w = self.weights
        rtts = [ctx.rtt_ms(r, req) for r in nodes]
        best_rtt = min(rtts)
        costs = [r.info.cost_per_hour / max(1, r.info.capacity) for r in nodes]
        cheapest = min(costs)
        utils = [ctx.utilization(r) for r in nodes]
        mean_u = max(sum(utils) / len(utils), 0.05)
        tol = self.balance_tolerance
        out = []
        for r, rtt, cost, u in zip(nodes, rtts, costs, utils, strict=True):
            lat = max(0.0, 1.0 - (rtt - best_rtt) / self.latency_budget_ms)
            cap = min(1.0, max(-2.0, 1.0 - (u / mean_u - 1.0 + tol) / (2.0 * tol)))
            rel = ctx.stats.reliability(r.info.node_id)
            cst = 1.0 if cost <= 0 else cheapest / cost
            out.append(w.latency * lat + w.capacity * cap + w.reliability * rel + w.cost * cst)
        return out

    def rank(
        self, nodes: Sequence[NodeRecord], req: RouteRequest, ctx: RouteContext
    ) -> list[NodeRecord]:
        if not nodes:
            return []
        s = self.scores(nodes, req, ctx)
        order = sorted(range(len(nodes)), key=lambda i: (-s[i], nodes[i].info.node_id))
        return [nodes[i] for i in order]


def make_strategy(name: str, weights: Weights | None = None) -> Strategy:
    table: dict[str, type] = {
        "round-robin": RoundRobin,
        "random": RandomChoice,
        "least-load": LeastLoad,
        "latency-p2c": PeakEwmaP2C,
        "proximity": Proximity,
    }
    if name == "weighted":
        return WeightedScore(weights)
    if name not in table:
        raise ValueError(f"strategy {name!r} unknown; known: {', '.join([*table, 'weighted'])}")
    strategy: Strategy = table[name]()
    return strategy


STRATEGIES = ("round-robin", "random", "least-load", "latency-p2c", "proximity", "weighted")
