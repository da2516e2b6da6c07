"""What the router learns from clients: peak-EWMA RTT per (client region, node), failures,
and outlier ejection."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .model import great_circle_km

# Prior RTT before anything is observed: fibre round trip (~100 km per ms of RTT) plus a
# 5G/Wi-Fi access leg. Replaced by measurements as soon as clients report them.
ACCESS_RTT_MS = 8.0
KM_PER_RTT_MS = 100.0


def prior_rtt_ms(distance_km: float) -> float:
    return ACCESS_RTT_MS + distance_km / KM_PER_RTT_MS


@dataclass
class PeakEwma:
    """Peak-sensitive EWMA (Finagle): a sample above the average replaces it at once, lower
    samples decay it with time constant ``tau_s``."""

    tau_s: float = 10.0
    value_ms: float = 0.0
    t_s: float = -math.inf

    def observe(self, rtt_ms: float, now_s: float) -> None:
        if rtt_ms >= self.value_ms or self.t_s == -math.inf:
            self.value_ms = rtt_ms
        else:
            w = math.exp(-(now_s - self.t_s) / self.tau_s)
            self.value_ms = self.value_ms * w + rtt_ms * (1.0 - w)
        self.t_s = now_s


@dataclass
class NodeHealth:
    consecutive_failures: int = 0
    ejected_until_s: float = 0.0
    ejections: int = 0
    failure_ewma: float = 0.0  # 0..1, alpha 0.1 per report


@dataclass
class RouterStats:
    """Thread-free (event-loop confined) store of observations."""

    eject_after_failures: int = 3
    base_ejection_s: float = 10.0
    max_ejection_s: float = 300.0
    rtt: dict[tuple[str, str], PeakEwma] = field(default_factory=dict)
    health: dict[str, NodeHealth] = field(default_factory=dict)

    def observed_rtt_ms(self, client_key: str, node_id: str) -> float | None:
        e = self.rtt.get((client_key, node_id))
        return None if e is None else e.value_ms

    def expected_rtt_ms(
        self,
        client_key: str,
        node_id: str,
        client_lat: float | None,
        client_lon: float | None,
        node_lat: float,
        node_lon: float,
    ) -> float:
        seen = self.observed_rtt_ms(client_key, node_id)
        if seen is not None:
            return seen
        if client_lat is None or client_lon is None:
            return prior_rtt_ms(5000.0)  # unknown location: no preference from distance
        return prior_rtt_ms(great_circle_km(client_lat, client_lon, node_lat, node_lon))

    def report(
        self, *, client_key: str, node_id: str, rtt_ms: float | None, ok: bool, now_s: float
    ) -> None:
        h = self.health.setdefault(node_id, NodeHealth())
        h.failure_ewma = 0.9 * h.failure_ewma + (0.0 if ok else 0.1)
        if ok:
            h.consecutive_failures = 0
            if rtt_ms is not None:
                self.rtt.setdefault((client_key, node_id), PeakEwma()).observe(rtt_ms, now_s)
            return
        h.consecutive_failures += 1
        if h.consecutive_failures >= self.eject_after_failures:
            backoff = min(self.max_ejection_s, self.base_ejection_s * 2.0**h.ejections)
            h.ejected_until_s = now_s + backoff
            h.ejections += 1
            h.consecutive_failures = 0

    def is_ejected(self, node_id: str, now_s: float) -> bool:
        h = self.health.get(node_id)
        return h is not None and h.ejected_until_s > now_s

    def reliability(self, node_id: str) -> float:
        h = self.health.get(node_id)
        return 1.0 if h is None else 1.0 - h.failure_ewma

    def forget(self, node_ids: set[str]) -> None:
        """Drop state of nodes no longer registered (bounds memory)."""
        for key in [k for k in self.rtt if k[1] not in node_ids]:
            del self.rtt[key]
        for nid in [n for n in self.health if n not in node_ids]:
            del self.health[nid]
