"""How many threads torch computes with, chosen for the machine as it is, and kept so.

Why: torch starts one OpenMP thread per core and, between parallel regions, its threads wait
by spinning. On a machine whose cores something else also uses (a browser, a server, a second
training, a sweep's other trials), a spinning thread burns the time slice its partner needs to
finish the region, and a training became many times slower than the share of CPU it lost
(docs/benchmarks.md, "Training on a busy machine"). Three rules:

- the count comes from the CPUs this process may actually use (its affinity mask and its
  cgroup's CPU quota, not the machine's core count), shared among the processes newsdesk
  itself runs side by side (`--nproc`, a sweep's `--jobs`);
- while training, `ThreadGovernor` looks every few seconds at how much of those CPUs other
  processes keep busy and computes with the threads that are left (at least one, at most the
  chosen count): one thread has no partner to wait for, and on an idle machine the count goes
  back up. Letting idle threads sleep instead (`OMP_WAIT_POLICY=PASSIVE`) protects a busy
  machine too, but made every training on an idle one slower, so it is left to the user;
- `--threads N` or OMP_NUM_THREADS fixes the count: then nothing is adjusted.

No torch here: the choice is made before torch is imported, and applied through a callable.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

THREADS_ENV = "OMP_NUM_THREADS"
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"

_CGROUP = Path("/sys/fs/cgroup")
_PROC_STAT = Path("/proc/stat")
# How often the governor looks at the machine; reading /proc/stat takes microseconds.
GOVERNOR_INTERVAL_S = 2.0


@dataclass(frozen=True)
class ThreadChoice:
    """The intra-op thread count and where it came from (logged with the run). `adjustable`:
    chosen by newsdesk, so the governor may lower it while other work needs the CPUs."""

    threads: int
    reason: str
    adjustable: bool = False
    cpus: float = 1.0


def cgroup_cpu_quota(root: Path = _CGROUP) -> float | None:
    """CPUs' worth of time the cgroup may use (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`
    over `cpu.cfs_period_us`); None without a quota."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        if text:
            return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def affinity_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def available_cpus(cgroup_root: Path = _CGROUP) -> float:
    quota = cgroup_cpu_quota(cgroup_root)
    cpus = float(affinity_cpus())
    return min(cpus, quota) if quota is not None else cpus


def choose_threads(
    requested: int | None = None,
    processes: int = 1,
    environ: Mapping[str, str] | None = None,
    cpus: float | None = None,
) -> ThreadChoice:
    """`requested` (--threads) when given; else OMP_NUM_THREADS when set; else the CPUs
    available to this process (`cpus`, measured when None) divided among the `processes`
    newsdesk runs side by side, at least 1. A bad value is a one-line ValueError."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads must be at least 1, got {requested}")
        return ThreadChoice(requested, "--threads")
    env = os.environ if environ is None else environ
    given = env.get(THREADS_ENV, "").strip()
    if given:
        try:
            threads = int(given)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ValueError(f"{THREADS_ENV}={given!r} is not a positive whole number")
        return ThreadChoice(threads, THREADS_ENV)
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    available = available_cpus() if cpus is None else cpus
    threads = max(1, math.floor(available / processes))
    share = f" shared by {processes} processes" if processes > 1 else ""
    return ThreadChoice(threads, f"{available:g} CPUs available{share}", True, available)


# Set by newsdesk in the processes it starts side by side: their share, which the governor
# of each may still lower (unlike a count the user gave in OMP_NUM_THREADS).
SHARE_ENV = "NEWSDESK_THREAD_SHARE"


def child_environment(
    base: Mapping[str, str], processes: int, requested: int | None = None
) -> dict[str, str]:
    """The environment of one of `processes` children that newsdesk runs side by side: each
    gets its share of the CPUs, or the user's count when one was given."""
    env = dict(base)
    if requested is None and not base.get(THREADS_ENV, "").strip():
        choice = choose_threads(None, processes, environ=base)
        env[SHARE_ENV] = str(choice.threads)
    return env


def choose_for_process(
    requested: int | None = None, environ: Mapping[str, str] | None = None
) -> ThreadChoice:
    """This process's choice: as `choose_threads`, where a share set by a newsdesk parent
    (`child_environment`) stands for the process count it was divided among."""
    env = os.environ if environ is None else environ
    share = env.get(SHARE_ENV, "").strip()
    if requested is None and not env.get(THREADS_ENV, "").strip() and share.isdigit():
        cpus = available_cpus()
        return ThreadChoice(
            int(share), f"{cpus:g} CPUs available shared by sibling processes", True, cpus
        )
    return choose_threads(requested, environ=env)


def _cpu_times(cpus: set[int] | None) -> float:
    """Seconds the CPUs in `cpus` (all, when None) spent busy since boot, from /proc/stat."""
    busy = 0
    for line in _PROC_STAT.read_text().splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
        busy += user + nice + system + irq + softirq + steal
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


class ThreadGovernor:
    """Keeps the thread count at what the machine leaves free, between 1 and the choice.

    `tick()` is called once per training step and costs a clock read; every `interval_s` it
    compares the CPUs' busy time with this process's own and lowers or restores the count
    through `set_threads`. Returns the new count when it changed, else None. A machine where
    /proc/stat cannot be read is left alone.
    """

    def __init__(
        self,
        choice: ThreadChoice,
        set_threads: Callable[[int], None],
        *,
        interval_s: float = GOVERNOR_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        busy_time: Callable[[], float] | None = None,
        own_time: Callable[[], float] = _own_cpu_s,
    ) -> None:
        self.ceiling, self.current = choice.threads, choice.threads
        self.cpus = choice.cpus
        self.enabled = choice.adjustable and choice.threads > 1
        self._set, self._clock, self._interval = set_threads, clock, interval_s
        affinity = None
        with contextlib.suppress(AttributeError, OSError):
            affinity = set(os.sched_getaffinity(0))
        self._busy = busy_time or (lambda: _cpu_times(affinity))
        self._own = own_time
        self._next = clock() + interval_s
        self._last: tuple[float, float, float] | None = None
        if self.enabled:
            try:
                self._last = (clock(), self._busy(), self._own())
            except (OSError, ValueError):
                self.enabled = False
            else:
                set_threads(self.ceiling)  # an earlier training may have left it lower

    def tick(self) -> int | None:
        if not self.enabled:
            return None
        now = self._clock()
        if now < self._next:
            return None
        self._next = now + self._interval
        try:
            busy, own = self._busy(), self._own()
        except (OSError, ValueError):
            self.enabled = False
            return None
        last_now, last_busy, last_own = self._last
        self._last = (now, busy, own)
        elapsed = now - last_now
        if elapsed <= 0:
            return None
        others = max(0.0, ((busy - last_busy) - (own - last_own)) / elapsed)
        # A quarter of a CPU of slack: a desktop's background keeps that busy, and a count
        # that flips at every look would cost more than either count.
        wanted = max(1, min(self.ceiling, math.floor(self.cpus - others + 0.25)))
        if wanted == self.current:
            return None
        self.current = wanted
        self._set(wanted)
        return wanted
