"""How many torch threads to use: every core, unless *other* processes keep some busy.

Two OpenMP threads on two cores collapse when another process competes (a 2-thread training step fell from 145 to
20 images/s here), so the choice must see other work — but not this process's own: a 1-minute load average counts
the demo's own earlier steps and made it fall back to one thread on an idle machine. So we measure, over a short
interval, the machine's busy CPU time from ``/proc/stat`` minus this process's own CPU time.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable


def _read_proc_stat() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, from the ``cpu`` line of /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [float(v) for v in fields[1:]]
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0.0)  # idle + iowait
    total = sum(ticks[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return (total - idle) / hz, total / hz


def _own_cpu_seconds() -> float:
    """CPU time of this process and its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def other_processes_cpu_share(
    interval: float = 0.5,
    *,
    read_stat: Callable[[], tuple[float, float] | None] = _read_proc_stat,
    own_cpu: Callable[[], float] = _own_cpu_seconds,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Cores kept busy by other processes over the next ``interval`` seconds (0 … cpu count); 0 where /proc/stat
    is not available (the machine is then assumed free)."""
    a, own_a = read_stat(), own_cpu()
    sleep(interval)
    b, own_b = read_stat(), own_cpu()
    if a is None or b is None:
        return 0.0
    wall = (b[1] - a[1]) / max(1, os.cpu_count() or 1)  # seconds that passed, from the machine's own clock
    if wall <= 0:
        return 0.0
    others = (b[0] - a[0]) - (own_b - own_a)
    return max(0.0, others / wall)


def pick_threads(busy_cores: float | None = None, cpus: int | None = None) -> int:
    """torch threads for this machine now: all cores when others are (nearly) idle, else the cores they leave."""
    cpus = cpus or os.cpu_count() or 1
    busy = other_processes_cpu_share() if busy_cores is None else busy_cores
    if busy < 0.5:
        return cpus
    return max(1, cpus - math.ceil(busy - 0.25))
