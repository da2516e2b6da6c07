"""Prometheus metrics for the node (one registry per server, injected from the app)."""

from __future__ import annotations

from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from .runtime import heap_in_use_bytes, python_blocks

_LATENCY_BUCKETS_S = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.5,
)


def _heap_in_use_bytes() -> float:
    b = heap_in_use_bytes()
    return -1.0 if b is None else float(b)


class PrometheusMetrics:
    """Implements :class:`edge_server.pipeline.ports.SessionMetrics`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.sessions_active = Gauge("edge_sessions_active", "Active analysis sessions", registry=r)
        self.sessions_total = Counter("edge_sessions_opened", "Sessions opened", registry=r)
        self.sessions_closed = Counter(
            "edge_sessions_closed", "Sessions closed, by reason", ["reason"], registry=r
        )
        self.sessions_rejected = Counter(
            "edge_sessions_rejected", "Sessions refused, by reason", ["reason"], registry=r
        )
        self.chunks = Counter("edge_chunks_processed", "Audio chunks analysed", registry=r)
        self.chunks_rejected = Counter(
            "edge_chunks_rejected",
            "Audio chunks refused or dropped, by reason",
            ["reason"],
            registry=r,
        )
        self.onsets = Counter("edge_onsets_detected", "Onsets reported", registry=r)
        self.onsets_retracted = Counter(
            "edge_onsets_retracted", "Onsets withdrawn by the fast note tier", registry=r
        )
        self.stage_latency = Histogram(
            "edge_stage_latency_seconds",
            "Server time per chunk and stage (decode, analyze, total = receive to send)",
            ["stage"],
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.batch_chunks = Histogram(
            "edge_batch_chunks",
            "Chunks per analysis batch (sessions analysed together in one call)",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
            registry=r,
        )
        self.batch_run = Histogram(
            "edge_batch_run_seconds",
            "Time from a batch's hand-over to the analysis worker to its outcomes",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self._decode = self.stage_latency.labels("decode")
        self._analyze = self.stage_latency.labels("analyze")
        self._total = self.stage_latency.labels("total")
        self._recent_total_s: deque[float] = deque(maxlen=2048)
        # the process: RSS, CPU, open fds (process_*), and what RSS does not tell apart from a
        # fragmented heap (docs/architecture.md § Memory)
        ProcessCollector(registry=r)
        Gauge(
            "edge_process_heap_in_use_bytes",
            "Bytes malloc has handed out and not freed (glibc mallinfo2; -1 where unavailable)",
            registry=r,
        ).set_function(_heap_in_use_bytes)
        Gauge(
            "edge_process_python_blocks",
            "Memory blocks Python's allocator has handed out and not freed",
            registry=r,
        ).set_function(python_blocks)

    def session_opened(self, active: int) -> None:
        self.sessions_total.inc()
        self.sessions_active.set(active)

    def session_closed(self, reason: str, active: int) -> None:
        self.sessions_closed.labels(reason).inc()
        self.sessions_active.set(active)

    def session_rejected(self, reason: str) -> None:
        self.sessions_rejected.labels(reason).inc()

    def chunk_processed(
        self,
        *,
        decode_s: float,
        analyze_s: float,
        total_s: float,
        onsets: int,
        retracted_onsets: int = 0,
    ) -> None:
        self.chunks.inc()
        self._decode.observe(decode_s)
        self._analyze.observe(analyze_s)
        self._total.observe(total_s)
        self._recent_total_s.append(total_s)
        if onsets:
            self.onsets.inc(onsets)
        if retracted_onsets:
            self.onsets_retracted.inc(retracted_onsets)

    def recent_p95_ms(self) -> float:
        """p95 of the server time of the last 2048 chunks, ms (0 when none)."""
        if not self._recent_total_s:
            return 0.0
        ordered = sorted(self._recent_total_s)
        return 1000.0 * ordered[int(0.95 * (len(ordered) - 1))]

    def chunk_rejected(self, reason: str) -> None:
        self.chunks_rejected.labels(reason).inc()

    def batch_done(self, *, chunks: int, run_s: float) -> None:
        self.batch_chunks.observe(chunks)
        self.batch_run.observe(run_s)
