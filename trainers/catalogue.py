"""The catalogue of models: the one place that lists them and what newsdesk needs of each.

A `ModelSpec` names a model's config class and model class (as "module:attribute", so that the
command line can list the models and their defaults without importing torch), its training
and data defaults, and its default sweep space. `--model` choices, `--model all`, the demo, the
sweep and prediction all read the catalogue: newsdesk's own models first (the linear baseline
leads, so every comparison shows the bar), then any that other packages register through the
`newsdesk.models` entry-point group (each entry point names a `ModelSpec`).
"""

from __future__ import annotations

import functools
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from types import MappingProxyType
from typing import Any

MODELS_GROUP = "newsdesk.models"


@dataclass(frozen=True)
class Dimension:
    """One setting a sweep searches: a range (floats or ints, optionally on a log scale) or a
    list of choices; its name is the `--set` key it overrides (`train.lr`)."""

    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: Any) -> Any:
        """The trial's value (an Optuna `Trial`; enqueued values come back as given)."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.name, self.low, self.high, log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def describe(self) -> str:
        if self.choices is not None:
            return "choices " + ", ".join(map(str, self.choices))
        return f"{'log ' if self.log else ''}[{self.low}, {self.high}]"


def _frozen(values: Mapping[str, object] | None = None) -> Mapping[str, object]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class ModelSpec:
    """What newsdesk needs of one model.

    `config` is the frozen dataclass of its `model.*` settings; `model` the `nn.Module` the
    training loop trains, built as `model(config, vocab_size, num_classes, pretrained,
    random_init)`. A model with a `runner` ("module:function", the linear baseline's
    `run_linear`) is fitted and logged by that function instead of the loop, and its `model`
    class loads it back with `from_checkpoint`. `train_defaults` and `data_defaults` go under
    the user's `--set train.*` / `data.*`; `sweep_space` is what `newsdesk sweep` searches
    when no `--space` file is given (empty: the model is not swept).
    """

    name: str
    config: str
    model: str
    runner: str | None = None
    train_defaults: Mapping[str, object] = field(default_factory=_frozen)
    data_defaults: Mapping[str, object] = field(default_factory=_frozen)
    sweep_space: tuple[Dimension, ...] = ()
    summary: str = ""

    def config_class(self) -> type:
        return pkgutil.resolve_name(self.config)

    def model_class(self) -> type:
        return pkgutil.resolve_name(self.model)

    def runner_function(self) -> Any:
        return pkgutil.resolve_name(self.runner) if self.runner else None


LINEAR = ModelSpec(
    name="linear",
    config="trainers.models.settings:LinearConfig",
    model="trainers.models.linear:LinearClassifier",
    runner="trainers.linear_run:run_linear",
    summary="TF-IDF of character n-grams and a linear SVM: the bar the others are shown against",
)

FASTTEXT = ModelSpec(
    name="fasttext",
    config="trainers.models.settings:FastTextConfig",
    model="trainers.models.fasttext:FastText",
    # On the `ngrams` features, L2-normalised, the table's rows get larger gradients than
    # under the mean, so its learning rate is the dense layer's. The hinge's margins are no
    # probabilities: the best checkpoint is the one with the best validation accuracy.
    train_defaults=_frozen(
        {
            "epochs": 5,
            "lr": 2e-3,
            "sparse_lr": 2e-3,
            "lr_decay": "linear",
            "min_steps": 1000,
            "monitor": "val/acc",
            "mode": "max",
        }
    ),
    # The linear model's features as tokens (`NgramTokenizer`), all kept: a vocabulary of
    # 50,000 would drop most word and bigram features.
    data_defaults=_frozen({"tokenizer": "ngrams", "max_vocab": 1_000_000}),
    # Its table learns at its own rate (`train.sparse_lr`), the setting it is most sensitive
    # to on its TF-IDF features.
    sweep_space=(
        Dimension("train.lr", 5e-4, 1e-2, log=True),
        Dimension("train.sparse_lr", 5e-4, 2e-2, log=True),
        Dimension("model.dropout", 0.0, 0.6),
        Dimension("train.epochs", 2, 8),
    ),
    summary="a bag of n-gram embeddings with TF-IDF weights and a one-vs-rest hinge",
)

TEXTCNN = ModelSpec(
    name="textcnn",
    config="trainers.models.settings:TextCNNConfig",
    model="trainers.models.textcnn:TextCNN",
    # Three epochs suffice with the n-gram bag beside the convolutions; the tables (bag and
    # tokens) are sparse. Ten evaluations in batches of 256 (its folded convolutions are
    # memory-bound at 1,024); with evaluations further apart, three without gain end it.
    train_defaults=_frozen(
        {
            "epochs": 3,
            "lr": 2e-3,
            "sparse_lr": 2e-2,
            "lr_decay": "linear",
            "min_steps": 1000,
            "evaluations": 10,
            "patience_evaluations": 3,
            "eval_batch_size": 256,
        }
    ),
    # The bag beside the sequence gains from jieba's words next to the characters.
    data_defaults=_frozen({"tokenizer": "char+word"}),
    sweep_space=(
        Dimension("train.lr", 3e-4, 5e-3, log=True),
        Dimension("model.dropout", 0.0, 0.6),
        Dimension("model.num_filters", choices=(64, 128, 256)),
        Dimension("train.epochs", 2, 6),
    ),
    summary="convolutions of widths 2-4 over the tokens, an n-gram bag beside them",
)

LSTM = ModelSpec(
    name="lstm",
    config="trainers.models.settings:LSTMConfig",
    model="trainers.models.lstm:LSTMClassifier",
    # Fewer evaluations: each one runs the LSTM over the whole dev split. Three epochs: with
    # branch dropout (half the examples classified by the bag alone) it needs one more.
    train_defaults=_frozen(
        {
            "epochs": 3,
            "lr": 3e-3,
            "sparse_lr": 1e-2,
            "lr_decay": "linear",
            "min_steps": 700,
            "evaluations": 7,
            "patience_evaluations": 3,
        }
    ),
    data_defaults=_frozen({"tokenizer": "char+word"}),
    sweep_space=(
        Dimension("train.lr", 5e-4, 5e-3, log=True),
        Dimension("model.dropout", 0.0, 0.5),
        Dimension("model.hidden_size", choices=(64, 128, 256)),
        Dimension("train.epochs", 2, 5),
    ),
    summary="a bidirectional LSTM over the tokens, an n-gram bag beside it",
)

BUILT_IN = (LINEAR, FASTTEXT, TEXTCNN, LSTM)


@functools.cache
def model_specs() -> tuple[ModelSpec, ...]:
    """Every model: newsdesk's own, then those of the `newsdesk.models` entry points (in name
    order); a registered name that is already taken is an error, not a silent replacement.

    Read once per process: scanning the installed distributions for entry points costs a
    noticeable part of a command's start-up, and what is installed does not change under a
    running command."""
    specs = list(BUILT_IN)
    for entry in sorted(metadata.entry_points(group=MODELS_GROUP), key=lambda ep: ep.name):
        spec = entry.load()
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"entry point {entry.name} = {entry.value} is not a ModelSpec")
        if any(s.name == spec.name for s in specs):
            raise ValueError(f"entry point {entry.value} registers model {spec.name!r} again")
        specs.append(spec)
    return tuple(specs)


def model_names() -> tuple[str, ...]:
    return tuple(spec.name for spec in model_specs())


def model_spec(name: str) -> ModelSpec:
    for spec in model_specs():
        if spec.name == name:
            return spec
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
