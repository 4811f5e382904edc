"""torch's threads are chosen from the CPUs a process may use and what else newsdesk runs beside
it, lowered while other processes keep those CPUs busy and restored after, the user's
`--threads` or OMP_NUM_THREADS win, and a run records the choice."""

from __future__ import annotations

import os
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import newsdesk_command, run_ok
from trainers.threads import (
    SHARE_ENV,
    THREADS_ENV,
    ThreadChoice,
    ThreadGovernor,
    affinity_cpus,
    available_cpus,
    cgroup_cpu_quota,
    child_environment,
    choose_for_process,
    choose_threads,
)


def test_the_users_count_wins_then_the_environment_then_the_cpus():
    assert choose_threads(3, environ={THREADS_ENV: "1"}, cpus=8).threads == 3
    assert choose_threads(None, environ={THREADS_ENV: "5"}, cpus=8).reason == THREADS_ENV
    chosen = choose_threads(None, environ={}, cpus=8)
    assert chosen.threads == 8 and "8 CPUs available" in chosen.reason
    shared = choose_threads(None, processes=3, environ={}, cpus=8)
    assert shared.threads == 2 and "shared by 3 processes" in shared.reason
    assert choose_threads(None, processes=4, environ={}, cpus=1.5).threads == 1


@pytest.mark.parametrize(
    ("requested", "environ", "message"),
    [(0, {}, "--threads must be at least 1"), (None, {THREADS_ENV: "two"}, "OMP_NUM_THREADS")],
)
def test_a_bad_count_is_a_one_line_error(requested, environ, message):
    with pytest.raises(ValueError, match=message):
        choose_threads(requested, environ=environ, cpus=2)


def test_a_cgroup_quota_limits_the_cpus(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(v2) == 1.5
    assert available_cpus(v2) == min(1.5, affinity_cpus())
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(v1) == 0.5
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(v1) is None
    assert cgroup_cpu_quota(tmp_path / "none") is None


def test_children_get_their_share_and_the_users_count_stays_fixed():
    child = child_environment({"PATH": "/bin"}, processes=2)
    assert child["PATH"] == "/bin" and THREADS_ENV not in child
    assert int(child[SHARE_ENV]) == max(1, int(available_cpus() // 2))
    shared = choose_for_process(environ=child)
    assert shared.threads == int(child[SHARE_ENV]) and shared.adjustable
    assert "sibling" in shared.reason
    given = child_environment({THREADS_ENV: "3"}, processes=2)
    assert SHARE_ENV not in given
    assert choose_for_process(environ=given) == ThreadChoice(3, THREADS_ENV)
    assert not choose_threads(2, environ={}).adjustable


class _Machine:
    """A clock and CPU-time counters the test advances: what /proc/stat and os.times say."""

    def __init__(self) -> None:
        self.now = self.busy = self.own = 0.0
        self.set: list[int] = []

    def advance(self, seconds: float, own_cpus: float, other_cpus: float) -> None:
        self.now += seconds
        self.own += own_cpus * seconds
        self.busy += (own_cpus + other_cpus) * seconds

    def governor(self, choice: ThreadChoice) -> ThreadGovernor:
        return ThreadGovernor(
            choice,
            self.set.append,
            interval_s=2.0,
            clock=lambda: self.now,
            busy_time=lambda: self.busy,
            own_time=lambda: self.own,
        )


def test_the_governor_gives_way_to_other_work_and_takes_the_cpus_back():
    machine = _Machine()
    governor = machine.governor(ThreadChoice(2, "2 CPUs available", True, 2.0))
    assert machine.set == [2]  # whatever an earlier training left
    machine.advance(1.0, own_cpus=2.0, other_cpus=0.0)
    assert governor.tick() is None  # not yet time to look
    machine.advance(1.5, own_cpus=2.0, other_cpus=0.05)
    assert governor.tick() is None and governor.current == 2  # idle: both threads
    machine.advance(2.0, own_cpus=0.9, other_cpus=1.1)  # two burners started
    assert governor.tick() == 1 and machine.set == [2, 1]
    machine.advance(2.0, own_cpus=0.7, other_cpus=1.3)
    assert governor.tick() is None and governor.current == 1
    machine.advance(2.0, own_cpus=1.0, other_cpus=0.1)  # they stopped
    assert governor.tick() == 2 and machine.set == [2, 1, 2]


def test_a_fixed_count_is_never_adjusted():
    machine = _Machine()
    governor = machine.governor(ThreadChoice(2, "--threads"))
    machine.advance(3.0, own_cpus=0.5, other_cpus=1.5)
    assert governor.tick() is None and machine.set == []
    single = machine.governor(ThreadChoice(1, "1 CPUs available", True, 1.0))
    machine.advance(3.0, own_cpus=0.5, other_cpus=1.5)
    assert single.tick() is None and machine.set == []


def _params(store_uri: str, stdout: str) -> dict[str, str]:
    run_id = next(line.split()[2] for line in stdout.splitlines() if ": run " in line)
    return MlflowClient(tracking_uri=store_uri).get_run(run_id).data.params


def _train(thucnews_slice, store_uri, tmp_path, *extra, env=None, preexec_fn=None):
    command = newsdesk_command(
        "train",
        "--model",
        "fasttext",
        "--data",
        str(thucnews_slice),
        "--tracking-uri",
        store_uri,
        "--max-steps",
        "3",
        "--quiet",
        "--no-system-metrics",
        *extra,
    )
    return run_ok(command, env=env, cwd=tmp_path, preexec_fn=preexec_fn)


def test_a_run_records_the_threads_it_trained_with(thucnews_slice, store_uri, tmp_path):
    """Without a count from the user, a process bound to one CPU trains with one thread;
    `--threads` is taken as given."""
    env = {k: v for k, v in os.environ.items() if k != THREADS_ENV}
    bound = _train(
        thucnews_slice,
        store_uri,
        tmp_path,
        env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
    )
    params = _params(store_uri, bound.stdout)
    assert params["torch.threads"] == "1"
    assert params["torch.threads_from"].startswith("1 CPUs available")
    given = _train(thucnews_slice, store_uri, tmp_path, "--threads", "2", env=env)
    params = _params(store_uri, given.stdout)
    assert (params["torch.threads"], params["torch.threads_from"]) == ("2", "--threads")


def test_a_bad_threads_option_is_a_usage_error(thucnews_slice, store_uri, tmp_path):
    done = subprocess.run(
        newsdesk_command(
            "train", "--model", "fasttext", "--data", str(thucnews_slice), "--threads", "0"
        ),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("--threads must be at least 1, got 0")
