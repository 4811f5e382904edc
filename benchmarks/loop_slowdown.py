"""How much logging slows a real torch training loop (issue 11), against the loggers people use.

Workload: a small MLP train step (batch 128, forward, backward, Adam) sized to take about
1, 3 and 10 ms per step on this machine, logging 3 metrics per step through:

- `none`: the same loop, no logging (the baseline every ratio divides by);
- `newsdesk`: `TrainingLogger.log_metrics` into a fresh SQLite store;
- `mlflow-async`: `MlflowClient.log_batch(..., synchronous=False)` into a fresh SQLite store;
- `tensorboard`: `SummaryWriter.add_scalar`, three calls per step.

Variants run in interleaved rounds (the order rotates each round), in this one process; per
variant the minimum seconds per step over the rounds is taken, and the ratio is that minimum
over the baseline's minimum. The spread (max/min over rounds) is reported beside it. Every
point is counted in its store at the end (TensorBoard: read back from its event files).

    python benchmarks/loop_slowdown.py --out benchmarks/results [--rounds 5] [--seconds 1.5]

On a GPU (`--device cuda`) the step runs there and still reads its loss and accuracy back
with `.item()` every step, as `trainers/loop.py` does (it checks the loss before the
optimizer step), so each step waits for the GPU; the loggers then cost what they cost on
top of a synchronised step. The results go to `loop_slowdown_cuda.{json,md}`:

    python benchmarks/loop_slowdown.py --device cuda --targets 1 3 10
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker import TrainingLogger  # noqa: E402

TARGET_MS = (1.0, 3.0, 10.0)
BATCH = 128
KEYS = ("train/loss", "train/acc", "lr")


@dataclass
class Loop:
    """One MLP step of a chosen width: the unit of work the loggers are measured against."""

    width: int
    device: str = "cpu"

    def __post_init__(self) -> None:
        torch.manual_seed(0)
        layers = nn.Sequential(nn.Linear(256, self.width), nn.ReLU(), nn.Linear(self.width, 10))
        self.model = layers.to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.x = torch.randn(BATCH, 256, device=self.device)
        self.y = torch.randint(0, 10, (BATCH,), device=self.device)

    def step(self) -> tuple[float, float]:
        self.opt.zero_grad(set_to_none=True)
        logits = self.model(self.x)
        loss = nn.functional.cross_entropy(logits, self.y)
        loss.backward()
        self.opt.step()
        return loss.item(), (logits.argmax(1) == self.y).float().mean().item()


def seconds_per_step(loop: Loop, steps: int = 30) -> float:
    loop.step()
    started = time.perf_counter()
    for _ in range(steps):
        loop.step()
    return (time.perf_counter() - started) / steps


def calibrate(target_ms: float, device: str = "cpu") -> Loop:
    """The width whose step takes about `target_ms` (step time grows about linearly; on a
    GPU a step has a floor of kernel launches, under which the width stays at 16)."""
    width = 256
    for _ in range(12):  # a GPU's floor holds the time flat at first: more rounds than a CPU
        measured = seconds_per_step(Loop(width, device)) * 1000
        if abs(measured / target_ms - 1) < 0.1:
            break
        width = max(16, int(width * target_ms / measured))
    return Loop(width, device)


class Variant:
    name = "none"

    def open(self, root: Path) -> None: ...

    def log(self, step: int, loss: float, acc: float) -> None: ...

    def close(self) -> int:
        """Finish and return the number of points the store holds."""
        return 0


class Newsdesk(Variant):
    name = "newsdesk"

    def open(self, root: Path) -> None:
        self.log_ = TrainingLogger("loop", tracking_uri=f"sqlite:///{root}/newsdesk.db")

    def log(self, step: int, loss: float, acc: float) -> None:
        self.log_.log_metrics({"train/loss": loss, "train/acc": acc, "lr": 1e-3}, step=step)

    def close(self) -> int:
        self.log_.close()
        client = MlflowClient(tracking_uri=self.log_.location.tracking_uri)
        return sum(len(client.get_metric_history(self.log_.run_id, k)) for k in KEYS)


class MlflowAsync(Variant):
    name = "mlflow-async"

    def open(self, root: Path) -> None:
        self.client = MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")
        exp = self.client.create_experiment("loop")
        self.run_id = self.client.create_run(exp).info.run_id

    def log(self, step: int, loss: float, acc: float) -> None:
        ts = int(time.time() * 1000)
        points = [
            Metric("train/loss", loss, ts, step),
            Metric("train/acc", acc, ts, step),
            Metric("lr", 1e-3, ts, step),
        ]
        self.client.log_batch(self.run_id, metrics=points, synchronous=False)

    def close(self) -> int:
        self.client._tracking_client.store.flush_async_logging()
        self.client.set_terminated(self.run_id)
        return sum(len(self.client.get_metric_history(self.run_id, k)) for k in KEYS)


class TensorBoard(Variant):
    name = "tensorboard"

    def open(self, root: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.dir = root / "tb"
        self.writer = SummaryWriter(str(self.dir))

    def log(self, step: int, loss: float, acc: float) -> None:
        self.writer.add_scalar("train/loss", loss, step)
        self.writer.add_scalar("train/acc", acc, step)
        self.writer.add_scalar("lr", 1e-3, step)

    def close(self) -> int:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        self.writer.close()
        acc = EventAccumulator(str(self.dir), size_guidance={"scalars": 0})
        acc.Reload()
        return sum(len(acc.Scalars(k)) for k in KEYS)


VARIANTS: tuple[Callable[[], Variant], ...] = (Variant, Newsdesk, MlflowAsync, TensorBoard)


def timed_round(loop: Loop, variant: Variant, steps: int, root: Path) -> tuple[float, int]:
    """Seconds per step of `steps` steps with `variant` logging, and the points it stored.

    The clock covers the loop only; the close (draining what is queued) is outside it, as
    it is outside a user's step time, but every point must be stored in the end."""
    variant.open(root)
    for _ in range(5):  # warm-up, not timed and not logged
        loop.step()
    started = time.perf_counter()
    for step in range(1, steps + 1):
        loss, acc = loop.step()
        variant.log(step, loss, acc)
    elapsed = time.perf_counter() - started
    stored = variant.close()
    return elapsed / steps, stored


def measure(target_ms: float, rounds: int, seconds: float, device: str = "cpu") -> dict:
    loop = calibrate(target_ms, device)
    step_s = seconds_per_step(loop)
    steps = max(200, int(seconds / step_s))
    per_variant: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    stored: dict[str, list[int]] = {v.name: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for make in order:
            variant = make()
            with tempfile.TemporaryDirectory(prefix="loop-") as tmp:
                s, n = timed_round(loop, variant, steps, Path(tmp))
            per_variant[variant.name].append(s)
            stored[variant.name].append(n)
    base = min(per_variant["none"])
    result = {
        "target_ms": target_ms,
        "width": loop.width,
        "steps_per_round": steps,
        "baseline_ms": base * 1000,
        "variants": {},
    }
    for name, times in per_variant.items():
        result["variants"][name] = {
            "ms_per_step_min": min(times) * 1000,
            "slowdown_pct": (min(times) / base - 1) * 100,
            "spread": max(times) / min(times),
            "points_expected": 0 if name == "none" else steps * len(KEYS),
            "points_stored_min": min(stored[name]),
        }
    return result


def markdown(results: list[dict], meta: dict) -> str:
    names = [v.name for v in VARIANTS if v.name != "none"]
    lines = [
        "# Loop slowdown: 3 metrics per step on a real torch loop",
        "",
        f"{meta['rounds']} interleaved rounds per step time; minimum per variant; slowdown "
        "against the same loop without logging, measured in the same run. "
        f"Machine: {meta['machine']}, {meta['cpus']} CPUs, torch {meta['torch']}"
        + (f", step on {meta['gpu']} (`.item()` every step)" if meta.get("gpu") else "")
        + ".",
        "",
        "| step (no logging) | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for r in results:
        cells = []
        for name in names:
            v = r["variants"][name]
            lost = v["points_expected"] - v["points_stored_min"]
            note = "" if lost == 0 else f", {lost} points missing"
            cells.append(f"{v['slowdown_pct']:+.1f} % (spread {v['spread']:.2f}{note})")
        lines.append(f"| {r['baseline_ms']:.2f} ms | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.5, help="loop time per round")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--targets", type=float, nargs="+", default=TARGET_MS, help="step times (ms) to size"
    )
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    results = [measure(t, args.rounds, args.seconds, args.device) for t in args.targets]
    meta = {
        "rounds": args.rounds,
        "machine": platform.machine(),
        "cpus": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if args.device == "cuda":
        meta["gpu"] = torch.cuda.get_device_name()
    name = "loop_slowdown" if args.device == "cpu" else f"loop_slowdown_{args.device}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    text = markdown(results, meta)
    (args.out / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
