"""Server configuration: embedded defaults, a TOML file, then command-line overrides."""

from __future__ import annotations

import dataclasses
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dsp.analyzer import AnalyzerConfig
from .dsp.netonsets import DecisionParams
from .dsp.notedecoder import NoteParams
from .dsp.onset import OnsetParams
from .pipeline.batcher import BatcherSettings
from .pipeline.manager import ManagerLimits
from .pipeline.session import SessionLimits


@dataclass(frozen=True, kw_only=True)
class RegistrySettings:
    """Announcing this node to a router's registry. Empty ``url``: the node does not register
    (the embedded default)."""

    url: str = ""
    #: HOST:PORT clients should use; default ``host:grpc_port``
    advertise: str = ""
    provider: str = "local"
    region: str = "local"
    latitude_deg: float = 0.0
    longitude_deg: float = 0.0
    #: sessions; 0 means ``manager.max_sessions``
    capacity: int = 0
    cost_per_hour: float = 0.0
    capabilities: tuple[str, ...] = ("onsets", "features", "notes", "refined-notes")
    ttl_s: float = 3.0
    heartbeat_s: float = 1.0


@dataclass(frozen=True, kw_only=True)
class StoreSettings:
    """Where sessions outlive their connection (see edge_server/store)."""

    #: ``memory://`` (embedded default: resume on this node only) or ``redis://HOST:PORT/DB``
    url: str = "memory://"
    #: a stored session expires this long after its last write
    ttl_s: float = 3600.0
    #: results kept per session for replay to a resuming client (512 x 23 ms = 12 s; a resume
    #: replays only what was in flight past the last snapshot)
    results_log_keep: int = 128
    #: a result waits this long for the store before it is sent unconfirmed
    commit_timeout_s: float = 1.0


@dataclass(frozen=True, kw_only=True)
class SyncSettings:
    """Forwarding the outbox to the cloud. Empty ``cloud_url``: no forwarder."""

    cloud_url: str = ""
    #: default ``spool/<node_id>`` under the working directory
    spool_dir: str = ""
    spool_max_mb: float = 256.0
    #: file holding a 256-bit AES-GCM key as 64 hex digits; empty: batches are not encrypted
    key_file: str = ""
    #: 0 = unlimited
    bandwidth_bytes_per_s: int = 0
    batch_records: int = 512
    resend_after_s: float = 2.0
    stale_resend_s: float = 60.0


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Everything the composition root needs. Defaults need no Redis and no Consul."""

    node_id: str = field(default_factory=lambda: f"edge-{socket.gethostname()}")
    zone: str = "local"
    host: str = "127.0.0.1"
    grpc_port: int = 50051
    http_port: int = 8080
    shutdown_grace_s: float = 10.0
    write_stall_timeout_s: float = 5.0
    #: a gRPC stream that sends nothing for this long is ended (DEADLINE_EXCEEDED)
    read_idle_timeout_s: float = 60.0
    inline_max_samples: int = 4096
    cpu_workers: int = 2
    #: threads running Basic Pitch windows for ANALYSIS_REFINED_NOTES (0: refused)
    refined_workers: int = 1
    webrtc_media_timeout_s: float = 5.0
    webrtc_max_peers: int = 200
    #: packets aiortc's receive jitter buffer holds before releasing audio (aiortc default 4)
    webrtc_jitter_prefetch_packets: int = 1
    #: serving processes sharing the gRPC port (SO_REUSEPORT); 1: this process only
    workers: int = 1
    #: bind the gRPC port with SO_REUSEPORT (set for each of ``workers`` > 1 processes)
    reuse_port: bool = False
    #: with ``reuse_port``: the port this worker alone listens on (0: any free one; a restarted
    #: worker gets its predecessor's, so that its registered address stays the same)
    own_grpc_port: int = 0
    #: "uvloop" (the Capacity issue measured 8-12 % less CPU per gRPC message) or "asyncio"
    event_loop: str = "uvloop"
    #: chunks a client may have unanswered (StreamStarted.credit_chunks)
    credit_chunks: int = 4
    batcher: BatcherSettings = field(default_factory=BatcherSettings)
    manager: ManagerLimits = field(default_factory=ManagerLimits)
    session: SessionLimits = field(default_factory=SessionLimits)
    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= 64:
            raise ValueError(f"workers must be in [1, 64], not {self.workers}")
        if self.event_loop not in ("asyncio", "uvloop"):
            raise ValueError(f"event_loop must be 'asyncio' or 'uvloop', not {self.event_loop!r}")
        if not 1 <= self.credit_chunks <= 1024:
            raise ValueError(f"credit_chunks must be in [1, 1024], not {self.credit_chunks}")


_NESTED: dict[str, type[Any]] = {
    "batcher": BatcherSettings,
    "manager": ManagerLimits,
    "session": SessionLimits,
    "analyzer": AnalyzerConfig,
    "registry": RegistrySettings,
    "store": StoreSettings,
    "sync": SyncSettings,
}


def _build(cls: type[Any], data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"{where}{key}: unknown setting; known: {', '.join(sorted(known))}")
        if key in _NESTED and cls is ServerConfig:
            kwargs[key] = _build(_NESTED[key], value, f"{where}{key}.")
        elif key == "onset" and cls is AnalyzerConfig:
            kwargs[key] = _build(OnsetParams, value, f"{where}{key}.")
        elif key == "decisions" and cls is AnalyzerConfig:
            kwargs[key] = _build(DecisionParams, value, f"{where}{key}.")
        elif key == "notes" and cls is AnalyzerConfig:
            kwargs[key] = _build(NoteParams, value, f"{where}{key}.")
        elif key == "capabilities" and cls is RegistrySettings:
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def load_config(path: Path | None = None, **overrides: Any) -> ServerConfig:
    """Defaults, then the TOML file at ``path`` (if any), then non-None ``overrides``."""
    data: dict[str, Any] = {}
    if path is not None:
        data = tomllib.loads(path.read_text())
    cfg: ServerConfig = _build(ServerConfig, data, "")
    return dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
