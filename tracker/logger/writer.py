"""The background writer: takes points off the caller's hot path and stores them in batches.

The caller only appends tuples to a deque (thread-safe and lock-free for a single append in
CPython). One daemon thread turns them into `log_batch` requests of at most 1,000 entities,
when enough points are pending or a flush interval has passed, and retries with backoff when the
store refuses. Points stay in memory until the store has accepted them; whatever is still
unsent when the writer is told to give up is handed back to the owner (which spools it).

Exactly once: a point carries the timestamp taken when it was handed over, so a batch that is
sent again after an ambiguous failure is recognised by MLflow's store, which deduplicates on
(key, timestamp, step, value).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mlflow.exceptions import MlflowException

from tracker.store.mlflow_internals import MAX_ENTITIES_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

_log = logging.getLogger(__name__)

MetricPoint = tuple[str, float, int, int]  # (key, value, timestamp_ms, step)

# Error codes (as `MlflowException.error_code` names them) that say the store understood the
# request and refused it: sending it again cannot help.
_PERMANENT_CODES = frozenset(
    {
        "INVALID_PARAMETER_VALUE",
        "INVALID_STATE",
        "RESOURCE_DOES_NOT_EXIST",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
    }
)


def is_permanent(exc: BaseException) -> bool:
    """True when retrying cannot help: the store understood the request and said no."""
    return isinstance(exc, MlflowException) and exc.error_code in _PERMANENT_CODES


@dataclass(frozen=True)
class WriterConfig:
    """Tuning of the background writer; the defaults suit both SQLite and a tracking server."""

    flush_interval_s: float = 1.0
    batch_size: int = MAX_ENTITIES_PER_BATCH
    wake_threshold: int = 1000
    backoff_initial_s: float = 0.25
    backoff_max_s: float = 5.0
    # How long `close` waits for the store without progress: every accepted batch restarts
    # the clock, so a long but healthy drain is never cut short.
    close_timeout_s: float = 30.0


@dataclass
class Batch:
    """One `log_batch` request being assembled or retried."""

    metrics: list[MetricPoint] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    def extend(self, other: Batch) -> None:
        self.metrics.extend(other.metrics)
        self.params.update(other.params)
        self.tags.update(other.tags)


@dataclass(frozen=True)
class ParamItem:
    key: str
    value: str


@dataclass(frozen=True)
class TagItem:
    key: str
    value: str


class _Marker:
    """A flush request: set once everything queued before it is stored (or given up on)."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()


Sender = Callable[[Sequence[MetricPoint], dict[str, str], dict[str, str]], None]


class BackgroundWriter:
    """Owns the queue and the thread that drains it through `send`."""

    def __init__(self, send: Sender, config: WriterConfig, name: str = "newsdesk-writer") -> None:
        self._send = send
        self._cfg = config
        self._queue: deque = deque()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._deadline: float | None = None
        self._patience_s = 0.0
        self._inflight = Batch()
        self._inflight_lock = threading.Lock()
        # The parts of a batch the store refused, sent one at a time (see `_separate`).
        self._pieces: list[Batch] = []
        self.stored = 0
        self.failures = 0
        self.rejected: list[tuple[Batch, str]] = []
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ----- caller side (hot path) -------------------------------------------------------------
    def put_metrics(self, points: list[MetricPoint]) -> None:
        queue = self._queue
        queue.extend(points)
        if len(queue) >= self._cfg.wake_threshold and not self._wake.is_set():
            self._wake.set()

    def put(self, item: ParamItem | TagItem) -> None:
        self._queue.append(item)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far is stored; False if `timeout` ran out first."""
        if not self._thread.is_alive():
            return not self._queue and not len(self._inflight)
        marker = _Marker()
        self._queue.append(marker)
        self._wake.set()
        return marker.event.wait(timeout)

    def close(self, timeout: float) -> Batch:
        """Drain until everything is stored, or until the store has accepted nothing for
        `timeout` seconds; return what could not be stored."""
        self._patience_s = timeout
        self._deadline = time.monotonic() + timeout
        self._closing.set()
        self._wake.set()
        while self._thread.is_alive() and time.monotonic() < self._deadline + 0.5:
            self._thread.join(0.1)
        with self._inflight_lock:
            leftover = Batch()
            leftover.extend(self._inflight)
            for piece in self._pieces:
                leftover.extend(piece)
            self._pieces = []
        for item in list(self._queue):
            self._add(leftover, item)
        self._queue.clear()
        return leftover

    # ----- writer thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self._cfg.flush_interval_s)
            self._wake.clear()
            finished = self._drain()
            if self._closing.is_set() and (finished or self._past_deadline()):
                return

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    @staticmethod
    def _add(batch: Batch, item) -> None:
        if type(item) is tuple:
            batch.metrics.append(item)
        elif type(item) is ParamItem:
            batch.params[item.key] = item.value
        elif type(item) is TagItem:
            batch.tags[item.key] = item.value
        elif type(item) is _Marker:
            item.event.set()

    def _fill(self) -> _Marker | None:
        """Move queued items into the in-flight batch until it is full or a marker is reached.

        The lock is taken once per fill: `close` may copy the in-flight batch at any moment.
        """
        queue, batch, cfg = self._queue, self._inflight, self._cfg
        with self._inflight_lock:
            while queue and len(batch) < cfg.batch_size:
                kind = type(queue[0])
                if kind is _Marker:
                    return queue.popleft()
                full = len(batch.params) + len(batch.tags) >= MAX_PARAMS_TAGS_PER_BATCH
                if kind is not tuple and full:
                    break
                self._add(batch, queue.popleft())
        return None

    def _drain(self) -> bool:
        """Send until the queue is empty; False when the close deadline stopped the retries."""
        while self._queue or len(self._inflight) or self._pieces:
            marker = None
            if self._pieces:
                self._next_piece()
            else:
                marker = self._fill()
            if len(self._inflight) and not self._send_with_retry():
                if marker is not None:
                    self._queue.appendleft(marker)
                return False
            if marker is not None:
                marker.event.set()
        return True

    def _send_with_retry(self) -> bool:
        batch = self._inflight
        delay = self._cfg.backoff_initial_s
        while True:
            try:
                self._send(batch.metrics, batch.params, batch.tags)
            except Exception as exc:  # noqa: BLE001 - every store error is either retried or kept
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.failures += 1
                if is_permanent(exc):
                    refused = self._take_inflight()
                    pieces = _separate(refused)
                    if len(pieces) > 1:  # find the entries it refused; send the rest
                        with self._inflight_lock:
                            self._pieces = pieces + self._pieces
                        return True
                    _log.error("the tracking store refused %d entries: %s", len(batch), exc)
                    self.rejected.append((refused, self.last_error))
                    return True
                if self._past_deadline():
                    return False
                _log.warning("tracking store unavailable (%s); retrying in %.2fs", exc, delay)
                remaining = None if self._deadline is None else self._deadline - time.monotonic()
                time.sleep(delay if remaining is None else max(0.0, min(delay, remaining)))
                delay = min(delay * 2, self._cfg.backoff_max_s)
                continue
            self.stored += len(batch.metrics)
            self.last_error = None
            if self._deadline is not None:  # closing, and the store is taking batches
                self._deadline = max(self._deadline, time.monotonic() + self._patience_s)
            self._take_inflight()
            return True

    def _next_piece(self) -> None:
        """Make the next part of a refused batch the in-flight batch (markers wait behind)."""
        with self._inflight_lock:
            if not len(self._inflight):
                self._inflight = self._pieces.pop(0)

    def _take_inflight(self) -> Batch:
        with self._inflight_lock:
            taken, self._inflight = self._inflight, Batch()
        return taken


def _separate(batch: Batch) -> list[Batch]:
    """A refused batch as parts the store judges one by one: all its metric points together
    (they were validated at the call, so the store refuses them only as a whole, e.g. a
    deleted run), then each param and each tag alone. One part means nothing to separate."""
    pieces = [Batch(metrics=batch.metrics)] if batch.metrics else []
    pieces += [Batch(params={key: value}) for key, value in batch.params.items()]
    pieces += [Batch(tags={key: value}) for key, value in batch.tags.items()]
    return pieces
