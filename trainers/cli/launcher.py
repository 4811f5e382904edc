"""`--nproc N`: start the N processes of a data-parallel job on this machine and watch them.

It does what `torchrun --standalone --nproc-per-node N` does for newsdesk (the same command is
run N times with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set), plus what a
run needs when a process dies:

- A process that dies stops the job: the others notice at their next collective (`PeerLost`)
  and rank 0 ends the run FAILED with the reason; any process still alive after `grace_s` is
  sent SIGTERM, then SIGKILL. Nothing is left running and the command never hangs.
- When rank 0 itself dies (SIGKILL, out of memory), it cannot end its run: the launcher, which
  rank 0 told the run id through a file, marks the run FAILED with the reason as a tag.
- SIGINT/SIGTERM to the launcher reaches every process, which stop together at a step
  boundary (rank 0 checkpoints; the run ends KILLED).

The exit code is the first failure's (128 + N for a signal N), else 0.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mlflow.tracking import MlflowClient

from tracker import schema
from tracker.store.location import resolve_store
from trainers.threads import child_environment

# The file in which rank 0 records the runs it opens (one id per line).
RUN_FILE_ENV = "NEWSDESK_RUN_FILE"
POLL_S = 0.2


def announce_run(run_id: str) -> None:
    """Called by rank 0 when it opens a run, so the launcher can end it if rank 0 dies."""
    path = os.environ.get(RUN_FILE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(run_id + "\n")


def _rendezvous_port() -> int:
    """A loopback port nothing listens on now, for the job's rendezvous (MASTER_PORT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _describe(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


class _Job:
    def __init__(self, argv: Sequence[str], nproc: int, run_file: Path) -> None:
        port = _rendezvous_port()
        self.procs: list[subprocess.Popen] = []
        for rank in range(nproc):
            # N processes share the CPUs instead of each starting one thread per CPU.
            env = child_environment(os.environ, nproc)
            env.update(
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE=str(nproc),
                LOCAL_WORLD_SIZE=str(nproc),
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
            )
            env[RUN_FILE_ENV] = str(run_file)
            cmd = [sys.executable, "-m", "trainers.cli", *argv]
            self.procs.append(subprocess.Popen(cmd, env=env))

    def signal_all(self, signum: int) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    def wait(self, grace_s: float) -> tuple[int, int | None]:
        """Wait for every process; returns (exit code, rank that failed first or None)."""
        first: tuple[int, int] | None = None  # (rank, code)
        deadline = None
        while any(p.poll() is None for p in self.procs):
            if first is None:
                for rank, proc in enumerate(self.procs):
                    code = proc.poll()
                    if code not in (None, 0):
                        first = (rank, code)
                        deadline = time.monotonic() + grace_s
                        break
            if deadline is not None and time.monotonic() > deadline:
                self.signal_all(signal.SIGTERM)
                time.sleep(10)
                self.signal_all(signal.SIGKILL)
                deadline = None
            time.sleep(POLL_S)
        if first is None:
            for rank, proc in enumerate(self.procs):
                if proc.returncode != 0:
                    first = (rank, proc.returncode)
                    break
        if first is None:
            return 0, None
        rank, code = first
        return (128 - code if code < 0 else code), rank


def _fail_open_runs(run_file: Path, tracking_uri: str | None, reason: str) -> None:
    """End the runs rank 0 left RUNNING (it died without ending them) as FAILED."""
    if not run_file.is_file():
        return
    client = MlflowClient(tracking_uri=resolve_store(tracking_uri).tracking_uri)
    for run_id in run_file.read_text(encoding="utf-8").split():
        try:
            run = client.get_run(run_id)
            if schema.left_open(run.info.status, run.data.tags):
                client.set_tag(run_id, schema.FAILURE_REASON_TAG, reason)
                client.set_terminated(run_id, status="FAILED")
                print(f"newsdesk: run {run_id} marked FAILED ({reason})", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - the store may be down; say so, do not hide it
            print(f"newsdesk: could not mark run {run_id} FAILED: {exc}", file=sys.stderr)


def launch(
    argv: Sequence[str], nproc: int, *, tracking_uri: str | None, grace_s: float = 60.0
) -> int:
    """Run `newsdesk *argv` as an `nproc`-process job; returns the command's exit code."""
    with tempfile.TemporaryDirectory(prefix="newsdesk-job-") as tmp:
        run_file = Path(tmp) / "runs.txt"
        job = _Job(argv, nproc, run_file)

        def forward(signum: int, frame: object) -> None:
            # Passed on as SIGTERM (a terminal's Ctrl-C also reached them as SIGINT; a second
            # SIGINT would mean "stop at once"): the processes stop together, gracefully.
            job.signal_all(signal.SIGTERM)

        previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            code, rank = job.wait(grace_s)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if rank is not None:
            what = _describe(job.procs[rank].returncode)
            reason = f"rank {rank} of {nproc} {what}"
            print(f"newsdesk: {reason}; the job stopped", file=sys.stderr)
            _fail_open_runs(run_file, tracking_uri, reason)
        return code
