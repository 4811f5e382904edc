"""What a training command asks for, parsed once from its arguments into typed requests.

The commands (`train`, `demo`, `resume`, `sweep`) turn their parsed arguments into one of these
(`trainers.cli.arguments`) and hand only the request on: wiring, training, resume and the sweep
never see the command line. `--set` values are typed against the config class they override
(`Settings`); a sweep's trial adds its values to a request as typed settings, never as `--set`
strings again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tracker.logger.system_metrics import DEFAULT_INTERVAL_S

# Mirrors trainers.distributed.DEFAULT_TIMEOUT_S, which imports torch (this module must not).
DEFAULT_TIMEOUT_S = 300.0


def frozen(values: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class Settings:
    """The settings given for each config section: `data` and `train` already typed (flags
    such as `--epochs` included); `model` values typed against the chosen model's config
    when the configs are made (one `--set model.*` can serve several models with `all`)."""

    data: Mapping[str, Any] = field(default_factory=frozen)
    train: Mapping[str, Any] = field(default_factory=frozen)
    model: Mapping[str, Any] = field(default_factory=frozen)

    def with_values(self, values: Mapping[str, Any]) -> Settings:
        """These settings with `values` (`{"train.lr": 3e-3, "model.dropout": 0.2}`, typed)
        over them: a sweep trial's."""
        sections: dict[str, dict[str, Any]] = {
            "data": dict(self.data),
            "train": dict(self.train),
            "model": dict(self.model),
        }
        for key, value in values.items():
            section, _, name = key.partition(".")
            sections[section][name] = value
        return Settings(**{k: frozen(v) for k, v in sections.items()})


@dataclass(frozen=True)
class Tracking:
    """Where runs go, and what the logger samples beside the loop's points."""

    tracking_uri: str | None
    experiment: str
    system_metrics_interval_s: float = DEFAULT_INTERVAL_S


@dataclass(frozen=True)
class Parallel:
    """`--nproc N`, how long a process waits for the others, and `--threads` (None: chosen
    for the machine, `trainers.threads`)."""

    nproc: int = 1
    timeout_s: float = DEFAULT_TIMEOUT_S
    threads: int | None = None


@dataclass(frozen=True)
class TrainRequest:
    """`newsdesk train` and `demo`: which models, with which settings, logged where."""

    models: tuple[str, ...]
    settings: Settings
    tracking: Tracking
    checkpoint_dir: Path | None = None
    quiet: bool = False
    parallel: Parallel = Parallel()
    # The command as given: `--nproc N` runs it again in each of its N processes.
    argv: tuple[str, ...] = ()
    # Runs per model, seeds `train.seed`, +1, ...: one group (`schema.SEED_GROUP_TAG`) each.
    seeds: int = 1


@dataclass(frozen=True)
class ResumeRequest:
    """`newsdesk resume`: which run, from which checkpoint, where its store is."""

    run_id: str
    tracking: Tracking
    checkpoint: Path | None = None
    cache_dir: Path | None = None
    quiet: bool = False
    parallel: Parallel = Parallel()
    argv: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepRequest:
    """`newsdesk sweep`: the study, and the training each of its trials is."""

    train: TrainRequest
    trials: int
    jobs: int
    seed: int
    study: str | None = None
    space: Path | None = None
    storage: str | None = None
    enqueued: tuple[Mapping[str, Any], ...] = ()
    pruner_startup_trials: int = 5
    pruner_warmup_steps: int = 0

    @property
    def model(self) -> str:
        return self.train.models[0]

    @property
    def fixed_length(self) -> bool:
        """The user fixed the length of a trial (`--epochs`, `--max-steps`)."""
        return any(k in self.train.settings.train for k in ("epochs", "max_steps"))
