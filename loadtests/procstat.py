"""What /proc says about a process tree and the machine: CPU seconds, RSS, steal (Linux)."""

from __future__ import annotations

import os

TICK_HZ = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == pid:
                out.append(int(d))
    return out


def tree(pid: int) -> list[int]:
    pids = [pid]
    for c in children(pid):
        pids += tree(c)
    return pids


def cpu_s(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / TICK_HZ


def thread_cpu_s(pids: list[int]) -> tuple[float, float]:
    """CPU seconds of the processes' main threads (a worker's event loop) and of all their
    other threads (a worker's batch thread, gRPC's pollers...)."""
    main = other = 0
    for p in pids:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks = int(fields[11]) + int(fields[12])
            if int(t) == p:
                main += ticks
            else:
                other += ticks
    return main / TICK_HZ, other / TICK_HZ


def rss_mb(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs from /proc/stat: the hypervisor's share of a VM."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    steal = fields[7] if len(fields) > 7 else 0
    return steal, sum(fields[:8])
