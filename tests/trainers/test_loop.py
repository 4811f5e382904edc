"""The training loop against the in-memory logger."""

from __future__ import annotations

import contextlib
import io
import math

import pytest
import torch

from tracker import MemoryLogger, schema
from trainers.config import TrainConfig
from trainers.data import DataConfig, prepare_data
from trainers.loop import TrainingDiverged, train
from trainers.models.registry import build_model, make_config
from trainers.run import run_training

TRAIN_KEYS = ["train/loss", "train/acc", "lr", "epoch"]
VAL_KEYS = ["val/loss", "val/acc"]
END_KEYS = [
    "test/loss",
    "test/acc",
    "test/macro_f1",
    "perf/samples_per_s",
    "perf/train_seconds",
    "perf/wall_time_s",
]


@pytest.fixture
def tiny(thucnews_slice, tmp_path):
    return prepare_data(DataConfig(data=thucnews_slice, cache_dir=tmp_path / "cache"))


def test_recorder_two_tiny_epochs_exact_step_and_key_sequence(tiny):
    """640 examples, batch 256: 3 steps per epoch, 2 epochs, validation every 2 steps."""
    log = MemoryLogger()
    config = TrainConfig(epochs=2, batch_size=256, eval_every=2, seed=3)
    run_training(
        "fasttext",
        make_config("fasttext", {"buckets": 1000}),
        DataConfig(),
        config,
        tiny,
        log,
        progress=False,
        log_model=False,
    )
    best_keys = set(schema.BEST_METRICS)
    # Best-so-far points follow the validation that improved them, at its step.
    best = [(i, step, m) for i, (step, m) in enumerate(log.records) if set(m) <= best_keys]
    assert best and best[0][2].keys() == best_keys  # the first validation improves all three
    for i, step, _ in best:
        assert log.records[i - 1] == (step, log.records[i - 1][1])
        assert sorted(log.records[i - 1][1]) == sorted(VAL_KEYS)
    sequence = [
        (step, sorted(metrics)) for step, metrics in log.records if not set(metrics) <= best_keys
    ]
    train_at = lambda s: (s, sorted(TRAIN_KEYS))  # noqa: E731
    val_at = lambda s: (s, sorted(VAL_KEYS))  # noqa: E731
    per_class = [
        schema.per_class_metric(prefix, name)
        for prefix in schema.PER_CLASS_PREFIXES
        for name in tiny.corpus.label_names
    ]
    assert sequence == [
        train_at(1),
        train_at(2),
        val_at(2),
        train_at(3),
        train_at(4),
        val_at(4),
        train_at(5),
        train_at(6),
        val_at(6),
        (6, sorted([*END_KEYS, *per_class])),
    ]
    epochs = [m["epoch"] for _, m in log.records if "epoch" in m]
    assert epochs == [1, 1, 1, 2, 2, 2]
    assert {"metrics/test_report.json", "plots/confusion.png", "plots/curves.png"} <= set(
        log.artifacts
    )
    report = log.artifacts["metrics/test_report.json"]
    assert set(report["classes"]) == set(tiny.corpus.label_names)
    assert log.params["model.name"] == "fasttext"
    assert log.params["train.batch_size"] == "256"
    assert log.tags["data.fingerprint"] == tiny.corpus.fingerprint


@pytest.mark.parametrize("model", ["fasttext", "textcnn", "lstm"])
def test_every_model_learns_on_a_slice(tiny, model):
    overrides = {
        "fasttext": {"buckets": 5000},
        "textcnn": {"num_filters": 32},
        "lstm": {"hidden_size": 32},
    }[model]
    log = MemoryLogger()
    result = train(
        _model(model, overrides, tiny),
        tiny,
        TrainConfig(epochs=3, batch_size=64, eval_every=10, lr=3e-3),
        log,
        progress=False,
    )
    losses = [v for _, v in log.history("train/loss")]
    assert len(losses) == result.global_step == 30
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, "training loss should fall"
    assert result.test.predictions.shape == (200,)


def _model(name, overrides, data):
    from trainers.models.init import init_weights
    from trainers.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(name, make_config(name, overrides), len(data.vocab), data.num_classes)
    init_weights(model)
    return model


def test_a_non_finite_loss_stops_training_and_is_stored(tiny):
    model = _model("textcnn", {"num_filters": 8}, tiny)
    with torch.no_grad():
        model.fc.weight.fill_(math.nan)
    log = MemoryLogger()
    with pytest.raises(TrainingDiverged, match="non-finite training loss"):
        train(model, tiny, TrainConfig(), log, progress=False)
    [(step, value)] = log.history("train/loss")  # kept, so the curve shows where it broke
    assert step == 1 and math.isnan(value)


def test_a_loss_far_above_the_first_stops_training(tiny):
    model = _model("textcnn", {"num_filters": 8}, tiny)
    log = MemoryLogger()
    config = TrainConfig(lr=1e9, divergence_threshold=2.0, epochs=20, batch_size=16)
    with pytest.raises(TrainingDiverged, match="times the first loss|non-finite"):
        train(model, tiny, config, log, progress=False)
    losses = [v for _, v in log.history("train/loss")]
    assert not all(math.isfinite(v) for v in losses) or max(losses) > 2.0 * losses[0]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"lr": math.nan}, "train.lr"),
        ({"lr": 0.0}, "train.lr"),
        ({"monitor": "test/acc"}, "train.monitor"),
        ({"divergence_threshold": 1.0}, "train.divergence_threshold"),
    ],
)
def test_settings_that_cannot_train_are_refused_when_the_config_is_made(setting, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**setting)


def test_early_stopping_on_an_explicit_monitor(tiny):
    log = MemoryLogger()
    config = TrainConfig(
        epochs=50, batch_size=64, eval_every=5, patience=10, monitor="val/acc", mode="max", lr=1e-2
    )
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        result = train(
            _model("fasttext", {"buckets": 1000}, tiny), tiny, config, log, progress_label="ft"
        )
    assert result.stopped_early
    assert result.global_step < 50 * 10
    assert (
        f"ft: stopped early at step {result.global_step} of {config.epochs * 10}: val/acc did "
        f"not improve for 10 steps; keeping the best, step {result.best_step}"
    ) in said.getvalue()
    val = log.history("val/acc")
    assert result.best_value == max(v for _, v in val)
    assert result.global_step - result.best_step >= 10


def test_init_leaves_embeddings_alone_and_zeroes_biases(tiny):
    from trainers.models.init import init_weights
    from trainers.models.registry import build_model

    model = build_model(
        "lstm", make_config("lstm", {}), len(tiny.vocab), tiny.num_classes, tiny.embeddings
    )
    before = model.embedding.weight.clone()
    init_weights(model, "kaiming")
    assert torch.equal(before, model.embedding.weight)
    assert torch.count_nonzero(model.fc.bias) == 0
    with pytest.raises(ValueError, match="unknown init"):
        init_weights(model, "bogus")  # type: ignore[arg-type]


class _UnreachableStore(MemoryLogger):
    """Takes points but never gets them stored: `flush` times out."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self, timeout: float | None = None) -> bool:
        self.flushes += 1
        return False


@pytest.mark.parametrize("reachable", [True, False])
def test_checkpoints_wait_for_the_store(tiny, tmp_path, reachable):
    """A periodic resume checkpoint is saved only once the logger has stored what came before
    it; with the store unreachable the save is skipped (once per interval, not at every step).
    The final one is saved regardless."""
    from trainers.state import Checkpointer, load_resume_state

    log = MemoryLogger() if reachable else _UnreachableStore()
    path = tmp_path / "resume.pt"
    every = Checkpointer(path=path, every_steps=5, flush_timeout_s=0.01)
    config = TrainConfig(epochs=1, max_steps=20, batch_size=32, eval_every=10)
    net = build_model("fasttext", make_config("fasttext", {"buckets": 1000}), len(tiny.vocab), 10)
    train(net, tiny, config, log, progress=False, checkpointer=every)
    if reachable:
        assert load_resume_state(path)["global_step"] == 20
    else:
        # The periodic saves at steps 5, 10 and 15 were skipped after a failed flush; the final
        # one (after a failed flush too) is saved anyway: the trained weights must survive.
        assert load_resume_state(path)["global_step"] == 20 and log.flushes == 3 + 1
        path.unlink()
        timed = Checkpointer(path=path, interval_s=3600, flush_timeout_s=0.01)
        timed._last_save -= 3600  # due now
        log.flushes = 0
        train(net, tiny, config, log, progress=False, checkpointer=timed)
        assert load_resume_state(path)["global_step"] == 20  # the final one
        assert log.flushes == 1 + 1  # one periodic try, then an interval later; the final
