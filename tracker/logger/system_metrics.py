"""System metrics (CPU, memory, disk, network; GPU through nvidia-ml-py when present) sampled
into a run by MLflow's own `SystemMetricsMonitor`, as `system/*` metrics.

The monitor is a daemon thread that wakes every `interval_s` seconds, reads psutil and writes
one batch; it is given the run's tracking URI explicitly (never MLflow's global one). It needs
psutil (`newsdesk[system]`); without it the run goes on without system metrics and says so
once. `benchmarks/system_metrics.py` measures what it costs a training loop.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from typing import Any

DEFAULT_INTERVAL_S = 10.0
_log = logging.getLogger(__name__)


def start_system_metrics(tracking_uri: str, run_id: str, interval_s: float) -> Any | None:
    """Start sampling into `run_id`; returns the monitor (to `stop_system_metrics`) or None."""
    if interval_s <= 0:
        return None
    if importlib.util.find_spec("psutil") is None:
        _log.warning(
            "system metrics are off: psutil is not installed (pip install 'newsdesk[system]')"
        )
        return None
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(
        run_id, sampling_interval=interval_s, resume_logging=True, tracking_uri=tracking_uri
    )
    monitor.start()
    return monitor


def stop_system_metrics(monitor: Any | None, timeout_s: float = 5.0) -> bool:
    """Stop sampling and write what was sampled (before the run is ended).

    The monitor asks the store for the run's status when it wakes; against a store that is
    down that call retries for minutes, so closing waits at most `timeout_s` for it (the
    thread is a daemon). Returns False when it did not finish in time.
    """
    if monitor is None:
        return True
    stopper = threading.Thread(target=monitor.finish, daemon=True, name="stop-system-metrics")
    stopper.start()
    stopper.join(timeout_s)
    return not stopper.is_alive()
