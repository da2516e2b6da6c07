"""The router: capability filter, ejection and capacity filter, then a strategy's ranking."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .model import ErrorKind, NodeRecord, RouterError, check_capabilities, check_coordinates
from .stats import RouterStats
from .strategies import STRATEGIES, RouteContext, RouteRequest, Strategy, make_strategy


@dataclass(frozen=True)
class RankedNode:
    record: NodeRecord
    score: float
    expected_rtt_ms: float


def validate_request(req: RouteRequest) -> RouteRequest:
    if (req.latitude_deg is None) != (req.longitude_deg is None):
        raise RouterError(
            ErrorKind.INVALID_ARGUMENT,
            "location: give both latitude_deg and longitude_deg or neither",
        )
    if req.latitude_deg is not None and req.longitude_deg is not None:
        check_coordinates(req.latitude_deg, req.longitude_deg, field_prefix="location.")
    check_capabilities(req.capabilities, field_name="capabilities")
    if not 1 <= req.max_nodes <= 50:
        raise RouterError(
            ErrorKind.INVALID_ARGUMENT, f"max_nodes={req.max_nodes} is out of range [1, 50]"
        )
    return req


class Router:
    """Ranks nodes for a client. ``nodes`` is a callable so the registry cache can swap its
    list at any time; ``clock`` is injectable for the simulation."""

    def __init__(
        self,
        nodes: Callable[[], Sequence[NodeRecord]],
        *,
        default_strategy: str = "weighted",
        stats: RouterStats | None = None,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ) -> None:
        self._nodes = nodes
        self.stats = stats or RouterStats()
        self._clock = clock
        self._strategies: dict[str, Strategy] = {n: make_strategy(n) for n in STRATEGIES}
        if default_strategy not in self._strategies:
            raise ValueError(f"unknown strategy {default_strategy!r}")
        self.default_strategy = default_strategy
        #: when each pending client was sent (router clock), oldest first
        self._sent_at: dict[str, list[float]] = {}
        self._rng = random.Random(seed)

    @property
    def pending(self) -> dict[str, int]:
        """Clients sent to each node that no load report includes yet."""
        return {nid: len(sent) for nid, sent in self._sent_at.items()}

    def set_strategy(self, strategy: Strategy) -> None:
        self._strategies[strategy.name] = strategy

    def pick(self, req: RouteRequest, *, strategy: str | None = None) -> list[RankedNode]:
        validate_request(req)
        name = strategy or self.default_strategy
        strat = self._strategies.get(name)
        if strat is None:
            raise RouterError(
                ErrorKind.INVALID_ARGUMENT,
                f"strategy={name!r} unknown; known: {', '.join(self._strategies)}",
            )
        now = self._clock()
        ctx = RouteContext(stats=self.stats, now_s=now, pending=self.pending, rng=self._rng)
        capable = [r for r in self._nodes() if req.capabilities <= r.info.capabilities]
        healthy = [r for r in capable if not self.stats.is_ejected(r.info.node_id, now)]
        if not healthy and capable:
            healthy = capable  # all ejected: better to try than to refuse everyone
        knows_load = name not in ("round-robin", "random")
        eligible = [r for r in healthy if not knows_load or ctx.load(r) < r.info.capacity]
        ranked = strat.rank(eligible, req, ctx)[: req.max_nodes]
        scores = (
            strat.scores(ranked, req, ctx)
            if hasattr(strat, "scores") and ranked
            else [float(len(ranked) - i) for i in range(len(ranked))]
        )
        return [RankedNode(r, s, ctx.rtt_ms(r, req)) for r, s in zip(ranked, scores, strict=True)]

    def assigned(self, node_id: str) -> None:
        """A client was sent to ``node_id`` (counts until a load report includes it)."""
        self._sent_at.setdefault(node_id, []).append(self._clock())

    def load_reported(self, node_id: str, *, lag_s: float = 0.0) -> None:
        """A new load report of ``node_id``: it includes the clients sent to it more than
        ``lag_s`` ago. A report sampled before a client connected must not erase it: in a
        burst, each report of one node would otherwise draw the next clients back to it
        (tests/router/test_cluster.py). The simulation's reports are exact (``lag_s`` 0)."""
        cutoff = self._clock() - lag_s
        sent = [t for t in self._sent_at.get(node_id, []) if t > cutoff]
        if sent:
            self._sent_at[node_id] = sent
        else:
            self._sent_at.pop(node_id, None)

    def report(self, *, client_key: str, node_id: str, rtt_ms: float | None, ok: bool) -> None:
        self.stats.report(
            client_key=client_key, node_id=node_id, rtt_ms=rtt_ms, ok=ok, now_s=self._clock()
        )
