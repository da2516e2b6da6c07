"""Build the gRPC server: analysis service, health and reflection."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from seminote.edge.v1 import analysis_pb2, analysis_pb2_grpc

from .grpc_service import AudioAnalysisService

log = logging.getLogger(__name__)

SERVICE_NAME = analysis_pb2.DESCRIPTOR.services_by_name["AudioAnalysis"].full_name

# 1 MiB: a 0.5 s chunk at 48 kHz stereo FLOAT32 is 384 kB; larger messages get gRPC's own
# RESOURCE_EXHAUSTED before they are parsed.
MAX_MESSAGE_BYTES = 1 << 20

#: gRPC server options of the node; the echo floor in loadtests/ uses the same list.
SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", 4 * MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


def server_options(*, reuse_port: bool) -> list[tuple[str, int]]:
    """SERVER_OPTIONS; with ``reuse_port`` the port is shared by several processes."""
    return [(k, int(reuse_port) if k == "grpc.so_reuseport" else v) for k, v in SERVER_OPTIONS]


class GrpcEndpoint:
    """The node's gRPC server and its health servicer."""

    def __init__(
        self,
        *,
        service: AudioAnalysisService,
        host: str,
        port: int,
        reuse_port: bool = False,
        own_port: int = 0,
    ) -> None:
        options = server_options(reuse_port=reuse_port)
        self.server = grpc.aio.server(options=options)
        # generated *_pb2_grpc code carries no annotations
        analysis_pb2_grpc.add_AudioAnalysisServicer_to_server(service, self.server)  # type: ignore[no-untyped-call]
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"could not bind gRPC port {host}:{port}")
        #: with ``reuse_port`` (one of several worker processes on ``port``) also a port of this
        #: process alone: the kernel spreads the shared port's connections by hash, unevenly at
        #: a node's session counts, while a router that knows each worker's load can send a
        #: client to the least loaded one there (docs/capacity.md)
        self.own_port: int | None = None
        if reuse_port:
            self.own_port = self._bind_own(host, own_port)

    def _bind_own(self, host: str, port: int) -> int:
        """``port`` (a restarted worker's predecessor's), or any free one if it is taken."""
        if port:
            try:
                bound = self.server.add_insecure_port(f"{host}:{port}")
            except RuntimeError:  # grpcio raises when the port cannot be bound
                bound = 0
            if bound:
                return int(bound)
            log.warning("gRPC port %s:%d is taken; this worker listens on another", host, port)
        bound = self.server.add_insecure_port(f"{host}:0")
        if bound == 0:
            raise OSError(f"could not bind a gRPC port of this worker on {host}")
        return int(bound)

    async def start(self) -> None:
        await self.server.start()
        await self.set_serving(True)

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    async def stop(self, grace_s: float) -> None:
        await self.server.stop(grace_s)
