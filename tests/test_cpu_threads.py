"""Thread choice: every core unless *other* processes are busy (t2igan.utils.cpu)."""

import subprocess
import sys
import time

from t2igan.utils.cpu import other_processes_cpu_share, pick_threads


def fake_readers(machine_busy: float, own: float, seconds: float = 1.0, cpus: int = 2):
    """/proc/stat and own-CPU readers over one interval: the machine did ``machine_busy`` core-seconds of work, of
    which this process did ``own``."""
    calls = {"stat": 0, "own": 0}

    def read_stat():
        calls["stat"] += 1
        return (0.0, 0.0) if calls["stat"] == 1 else (machine_busy, seconds * cpus)

    def own_cpu():
        calls["own"] += 1
        return 0.0 if calls["own"] == 1 else own

    return read_stat, own_cpu


def test_own_work_does_not_count_as_busy():
    # The demo's own encoder step kept both cores busy: a load average said "busy", this must say "idle".
    read_stat, own_cpu = fake_readers(machine_busy=2.0, own=2.0)
    busy = other_processes_cpu_share(1.0, read_stat=read_stat, own_cpu=own_cpu, sleep=lambda _s: None)
    assert busy == 0.0
    assert pick_threads(busy, cpus=2) == 2


def test_other_work_counts():
    read_stat, own_cpu = fake_readers(machine_busy=1.5, own=0.5)
    busy = other_processes_cpu_share(1.0, read_stat=read_stat, own_cpu=own_cpu, sleep=lambda _s: None)
    assert abs(busy - 1.0) < 1e-9
    assert pick_threads(busy, cpus=2) == 1
    assert pick_threads(busy, cpus=8) == 7
    assert pick_threads(0.3, cpus=2) == 2
    assert pick_threads(5.0, cpus=2) == 1


def test_no_proc_stat_means_free():
    assert other_processes_cpu_share(0.0, read_stat=lambda: None, sleep=lambda _s: None) == 0.0


def test_a_real_busy_process_is_seen():
    busy_loop = "import time\nt = time.time()\nwhile time.time() - t < 3: pass\n"
    proc = subprocess.Popen([sys.executable, "-c", busy_loop])
    try:
        time.sleep(0.3)
        busy = other_processes_cpu_share(1.0)
    finally:
        proc.kill()
        proc.wait()
    assert busy >= 0.7  # one core kept busy (more if other tests run beside us)
    assert pick_threads(busy, cpus=2) == 1
