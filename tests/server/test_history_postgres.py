"""`metric_history` on PostgreSQL: one SQL query on the database equals the server's answer."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tracker import TrainingLogger, WriterConfig
from tracker.dashboard.compare import metric_history

pytestmark = pytest.mark.server


def test_sql_path_on_postgres_matches_the_server(pg_server, pg_database):
    run_ids = []
    for i in range(2):
        with TrainingLogger(
            "history",
            run_name=f"r{i}",
            tracking_uri=pg_server.url,
            writer_config=WriterConfig(flush_interval_s=0.05),
        ) as log:
            for step in range(1, 301):
                value = math.nan if step == 7 else (i + 1) / step
                log.log_metrics({"train/loss": value, "val/acc": step / 300}, step=step)
        run_ids.append(log.run_id)
    keys = ["train/loss", "val/acc"]
    through_server = metric_history(run_ids, keys, tracking_uri=pg_server.url)
    from_database = metric_history(run_ids, keys, tracking_uri=pg_database)
    assert len(from_database) == 2 * 2 * 300
    assert from_database["value"].isna().sum() == 2  # NaN survives both paths
    pd.testing.assert_frame_equal(through_server, from_database, check_dtype=False)
