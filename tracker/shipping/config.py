"""How the log and its shipper are tuned: `WriterConfig`, passed to `TrainingLogger`."""

from __future__ import annotations

from dataclasses import dataclass

# MLflow's `MAX_ENTITIES_PER_BATCH`, the most entries one `log_batch` may carry. Spelled here so
# that the config (a public name of `tracker`) loads without MLflow; a test checks the two agree.
MLFLOW_BATCH_LIMIT = 1000


@dataclass(frozen=True)
class WriterConfig:
    """Tuning of the log and its shipper; the defaults suit both SQLite and a tracking server."""

    # A batch is sent when this long has passed since its first point was read...
    flush_interval_s: float = 1.0
    # ...or when it holds `wake_threshold` entries, or as many as `parallel_requests`
    # requests of at most `batch_size` entries hold, whichever is fewer.
    batch_size: int = MLFLOW_BATCH_LIMIT
    wake_threshold: int = 100_000
    # A tracking server (HTTP) is sent up to this many metric requests at once while the log
    # is behind: each request waits on the server's database, and its workers take them side
    # by side. A database store gets one bulk statement instead.
    parallel_requests: int = 4
    backoff_initial_s: float = 0.25
    backoff_max_s: float = 5.0
    # How long `close` waits for the store without progress: every accepted batch restarts
    # the clock, so a long but healthy drain is never cut short.
    close_timeout_s: float = 30.0
    # A segment file of the log is closed and a new one started past this size; shipped
    # segments are deleted, so the disk holds about what the store has not taken yet.
    segment_bytes: int = 16 << 20
    # After the training process died, how long its shipper keeps retrying a store that does
    # not answer before it leaves the rest to `newsdesk sync`.
    orphan_patience_s: float = 300.0
    # The shipper runs at this `nice` increment, below the training loop.
    shipper_niceness: int = 10
