"""torch's threads are chosen from the CPUs a process may use and what else newsdesk runs beside
it, the user's `--threads` or OMP_NUM_THREADS win, waiting threads sleep, and a run records the
choice."""

from __future__ import annotations

import os
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import newsdesk_command, run_ok
from trainers.threads import (
    PASSIVE,
    THREADS_ENV,
    WAIT_POLICY_ENV,
    affinity_cpus,
    available_cpus,
    cgroup_cpu_quota,
    child_environment,
    choose_threads,
    prefer_passive_waiting,
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


def test_the_users_wait_policy_is_kept_and_children_get_their_share():
    env = {WAIT_POLICY_ENV: "ACTIVE"}
    prefer_passive_waiting(env)
    assert env[WAIT_POLICY_ENV] == "ACTIVE"
    empty: dict[str, str] = {}
    prefer_passive_waiting(empty)
    assert empty == {WAIT_POLICY_ENV: PASSIVE}
    child = child_environment({"PATH": "/bin"}, processes=2)
    assert child[WAIT_POLICY_ENV] == PASSIVE and child["PATH"] == "/bin"
    assert int(child[THREADS_ENV]) == max(1, int(available_cpus() // 2))
    assert child_environment({THREADS_ENV: "3"}, processes=2)[THREADS_ENV] == "3"


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
    """Without a count from the user, a process bound to one CPU trains with one thread, and
    the training process waits passively; `--threads` is taken as given."""
    env = {k: v for k, v in os.environ.items() if k not in (THREADS_ENV, WAIT_POLICY_ENV)}
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
    assert params["torch.omp_wait_policy"] == PASSIVE
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
