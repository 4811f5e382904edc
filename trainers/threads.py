"""How many threads torch computes with, chosen for the machine as it is.

Why: torch starts one OpenMP thread per core and, between parallel regions, its threads wait
by spinning. On a machine whose cores something else also uses (a browser, a server, a second
training, a sweep's other trials), a spinning thread burns the time slice its partner needs to
finish the region, and a training became many times slower than the share of CPU it lost.
Two rules fix that:

- threads come from the CPUs this process may actually use (its affinity mask and its
  cgroup's CPU quota, not the machine's core count), shared among the processes newsdesk
  itself runs side by side (`--nproc`, a sweep's `--jobs`); `--threads` or OMP_NUM_THREADS
  overrides the choice;
- waiting threads sleep instead of spinning (`OMP_WAIT_POLICY=PASSIVE`, unless the user set
  a policy), which costs an idle machine nothing measurable and a busy one most of the loss
  (docs/benchmarks.md, "Training on a busy machine"). OpenMP reads the policy when torch is
  loaded, so the commands set it before they import torch, and pass it to their children.

No torch here: the choice is made before torch is imported, and applied by the caller.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

THREADS_ENV = "OMP_NUM_THREADS"
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
PASSIVE = "PASSIVE"

_CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class ThreadChoice:
    """The intra-op thread count and where it came from (logged with the run)."""

    threads: int
    reason: str


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
    return ThreadChoice(threads, f"{available:g} CPUs available{share}")


def prefer_passive_waiting(environ: MutableMapping[str, str] | None = None) -> None:
    """Let OpenMP's idle threads sleep rather than spin, unless the user chose a policy.
    Effective only before torch is imported (and in the children started after it)."""
    env = os.environ if environ is None else environ
    env.setdefault(WAIT_POLICY_ENV, PASSIVE)


def child_environment(
    base: Mapping[str, str], processes: int, requested: int | None = None
) -> dict[str, str]:
    """The environment of one of `processes` children that newsdesk runs side by side: each
    gets its share of the CPUs (or the user's count) and the passive wait policy."""
    env = dict(base)
    choice = choose_threads(requested, processes, environ=base)
    env[THREADS_ENV] = str(choice.threads)
    prefer_passive_waiting(env)
    return env
