"""`newsdesk sync` on a folder of spool files as the field leaves them: damaged files beside
good ones, and runs that were resumed and ended after their spool was written."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.legacy_spool import Batch, SpoolContent, write_spool
from tracker.cli import main


def _spool(directory: Path, uri: str, run_id: str, steps: range, status: str | None) -> Path:
    ts = int(time.time() * 1000)
    batch = Batch(metrics=[("train/loss", 1.0 / s, ts, s) for s in steps])
    end = ts if status else None
    return write_spool(directory, SpoolContent(uri, run_id, batch, status=status, end_time=end))


def _steps(uri: str, run_id: str) -> list[int]:
    history = MlflowClient(tracking_uri=uri).get_metric_history(run_id, "train/loss")
    return sorted(m.step for m in history)


def _in_order(*paths: Path) -> None:
    """pending_spools replays oldest first: give the files that order."""
    now = time.time()
    for i, path in enumerate(paths):
        os.utime(path, (now - 100 + i, now - 100 + i))


def test_a_damaged_spool_is_set_aside_and_the_good_ones_still_ship(store_uri, tmp_path, capsys):
    client = MlflowClient(tracking_uri=store_uri)
    exp = client.create_experiment("sync")
    first, last = (client.create_run(exp).info.run_id for _ in range(2))
    spools = tmp_path / "spool"
    good_first = _spool(spools, store_uri, first, range(1, 101), "FINISHED")
    header = json.dumps({"type": "header", "version": 1, "tracking_uri": store_uri,
                         "run_id": first}) + "\n"  # fmt: skip
    garbage = spools / "garbage.jsonl"
    garbage.write_bytes(header.encode() + b"\xff\xfe\x00 not json\n")
    wrong_shape = spools / "shape.jsonl"
    wrong_shape.write_text(header + json.dumps({"type": "metrics", "items": [["x", 1]]}) + "\n")
    good_last = _spool(spools, store_uri, last, range(1, 51), "FINISHED")
    _in_order(good_first, garbage, wrong_shape, good_last)

    assert main(["sync", "--tracking-uri", store_uri, "--spool-dir", str(spools)]) == 1
    out, err = capsys.readouterr()
    assert "synced 150 metric points of 2 run(s) from 2 run log(s) or spool file(s)" in out
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert f"{garbage}:2 (byte {len(header)})" in lines[0]
    assert f"{wrong_shape}:2 (byte {len(header)})" in lines[1]
    assert all("set aside as" in line for line in lines)
    assert _steps(store_uri, first) == list(range(1, 101))
    assert _steps(store_uri, last) == list(range(1, 51))
    assert {p.suffix for p in spools.iterdir()} == {".synced", ".corrupt"}

    assert main(["sync", "--tracking-uri", store_uri, "--spool-dir", str(spools)]) == 0
    assert "nothing to sync" in capsys.readouterr().out
    assert _steps(store_uri, first) == list(range(1, 101))


def test_sync_keeps_a_newer_terminal_status(store_uri, tmp_path, capsys):
    """A run that crashed (spooled FAILED), was resumed and finished: a later sync stores the
    spooled points but leaves the run FINISHED. A run still open takes the spooled status."""
    client = MlflowClient(tracking_uri=store_uri)
    exp = client.create_experiment("sync-status")
    resumed, open_run = (client.create_run(exp).info.run_id for _ in range(2))
    spools = tmp_path / "spool"
    old = _spool(spools, store_uri, resumed, range(1, 11), "FAILED")
    other = _spool(spools, store_uri, open_run, range(1, 11), "KILLED")
    _in_order(old, other)
    time.sleep(0.01)
    client.set_terminated(resumed, status="FINISHED")  # later than the spool's end

    assert main(["sync", "--tracking-uri", store_uri, "--spool-dir", str(spools)]) == 0
    assert f"run {resumed} ended later than its spool says" in capsys.readouterr().err
    assert client.get_run(resumed).info.status == "FINISHED"
    assert _steps(store_uri, resumed) == list(range(1, 11))
    assert client.get_run(open_run).info.status == "KILLED"
