"""Serve from several processes on one gRPC port (SO_REUSEPORT), supervised.

One asyncio process tops out near 1.1 cores (the GIL, and gRPC's own threads); ``--workers N``
starts N serving processes that all listen on the same gRPC port with ``SO_REUSEPORT``, so the
kernel spreads *connections* evenly over them. A gRPC stream lives on one connection, hence on
one process: a session's state never moves between processes while it streams.

What differs from one process (documented in docs/capacity.md):

* each worker has its own HTTP port (metrics, health, WebRTC signalling): ``--http-port 0``
  gives each a free port, ``--http-port P`` gives worker i port ``P + i``;
* a resume or GetSession may reach another worker: use the Redis session store
  (``--store redis://...``) so that resume works across workers as across nodes;
* ``max_sessions`` and the other limits are per worker.
* each worker also listens on a gRPC port of its own and registers that one (as
  ``<node-id>-w<i>``): the kernel spreads the shared port's connections by hash, unevenly at
  a node's session counts, while a router balances registered workers by their load.

The supervisor restarts a worker that dies (at most ``MAX_RESTARTS`` per minute) and passes
SIGTERM/SIGINT on for a graceful drain. ``edge-server serve --workers N`` reads its
configuration, then replaces itself (``exec``) with ``python -m edge_server.workers``: this
module imports only the standard library, so the supervisor holds ~10 MB instead of the
~130 MB of a process that has loaded numpy, gRPC, aiortc and the models.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

MAX_RESTARTS = 5


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, non-listening SO_REUSEPORT socket holding ``port`` (0: a free one) for the
    workers; the kernel only hands connections to listening sockets."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, port))
    return s


class Supervisor:
    """Starts ``n`` workers, ``python -m <command> <argv> --grpc-port P --http-port H
    --worker-index i`` (``edge-server serve`` by default; ``argv`` without those options), and
    keeps them running. A worker prints ``... ready ... http=H`` when it serves."""

    def __init__(
        self,
        *,
        n: int,
        argv: list[str],
        host: str,
        grpc_port: int,
        http_port: int,
        command: tuple[str, ...] = ("edge_server.cli", "serve"),
    ):
        if n < 1:
            raise ValueError(f"--workers must be >= 1, not {n}")
        self.n = n
        self._argv = argv
        self._module = command
        self._hold = reserve_port(host, grpc_port)
        self.grpc_port = int(self._hold.getsockname()[1])
        self._http_base = http_port
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * n
        self.http_ports: list[int] = [0] * n
        #: each worker's gRPC port of its own (0: it reported none)
        self.own_ports: list[int] = [0] * n
        self._restarts: deque[float] = deque()
        self._stopping = threading.Event()

    def _spawn(self, i: int) -> None:
        http = self._http_base + i if self._http_base else 0
        cmd = [
            sys.executable, "-m", *self._module, *self._argv,
            "--grpc-port", str(self.grpc_port), "--http-port", str(http),
            "--worker-index", str(i),
        ]  # fmt: skip
        if self.own_ports[i]:  # a restart: the same own port, so the same registered address
            cmd += ["--own-grpc-port", str(self.own_ports[i])]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        assert p.stdout is not None
        line = p.stdout.readline().decode()
        if "ready" not in line:
            p.kill()
            raise RuntimeError(f"worker {i} did not start: {line.strip() or 'no output'}")
        ready = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)  # grpc=, http=, own=
        self.http_ports[i] = int(ready.get("http", 0))
        self.own_ports[i] = int(ready.get("own", 0))
        self._procs[i] = p

    def start(self) -> None:
        for i in range(self.n):
            self._spawn(i)

    def run(self) -> int:
        """Block until SIGTERM/SIGINT, restarting workers that exit; then stop them all."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stopping.set())
        while not self._stopping.wait(0.5):
            for i, p in enumerate(self._procs):
                if p is not None and p.poll() is not None:
                    now = time.monotonic()
                    while self._restarts and now - self._restarts[0] > 60:
                        self._restarts.popleft()
                    if len(self._restarts) >= MAX_RESTARTS:
                        print(f"worker {i} exited ({p.returncode}); too many restarts",
                              file=sys.stderr, flush=True)  # fmt: skip
                        self._stopping.set()
                        break
                    self._restarts.append(now)
                    print(f"worker {i} exited ({p.returncode}); restarting", file=sys.stderr,
                          flush=True)  # fmt: skip
                    self._spawn(i)
        return self.stop()

    def stop(self) -> int:
        for p in self._procs:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        rc = 0
        for p in self._procs:
            if p is not None:
                rc |= p.wait() or 0
        self._hold.close()
        return rc


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_server.workers --workers N --host H --grpc-port P --http-port Q
    [--ports-file F] -- <worker options>``: supervise N ``edge-server serve`` workers."""
    p = argparse.ArgumentParser(prog="edge_server.workers", description=main.__doc__)
    p.add_argument("--workers", type=int, required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--ports-file", type=Path, default=None)
    p.add_argument("worker_argv", nargs=argparse.REMAINDER, help="-- then the workers' options")
    args = p.parse_args(argv)
    passed = args.worker_argv[1:] if args.worker_argv[:1] == ["--"] else args.worker_argv
    sup = Supervisor(n=args.workers, argv=passed, host=args.host, grpc_port=args.grpc_port,
                     http_port=args.http_port)  # fmt: skip
    sup.start()
    if args.ports_file is not None:
        args.ports_file.write_text(json.dumps({"grpc": sup.grpc_port, "http": sup.http_ports[0],
                                               "http_workers": sup.http_ports,
                                               "grpc_workers": sup.own_ports}))  # fmt: skip
    ports = ", ".join(str(p) for p in sup.http_ports)
    print(f"edge-server: {sup.n} workers on gRPC port {sup.grpc_port}; HTTP ports {ports}",
          file=sys.stderr, flush=True)  # fmt: skip
    print(f"edge-server ready grpc={sup.grpc_port} http={sup.http_ports[0]} workers={sup.n}",
          flush=True)  # fmt: skip
    return sup.run()


if __name__ == "__main__":
    sys.exit(main())
