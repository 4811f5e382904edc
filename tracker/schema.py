"""The names a newsdesk run is made of: metrics, tags and artifacts, spelled once.

Trainers log under these names and the dashboard reads them back (`runs_frame`, the comparison
figure, promotion, `newsdesk resume`), so a renamed metric is a change in one place rather than
a silent mismatch between a writer and a reader. The names follow the MLflow UI's grouping by
slash (`train/…`, `val/…`, `test/…`, `perf/…`), which turns them into chart sections.

This module is part of the contract `trainers` may import, with `tracker.interface`.
"""

from __future__ import annotations

from collections.abc import Mapping

# Where runs go when neither the caller nor MLFLOW_EXPERIMENT_NAME names an experiment.
DEFAULT_EXPERIMENT = "newsdesk"

# ----- per optimizer step, at `global_step` -------------------------------------------------
TRAIN_LOSS = "train/loss"
TRAIN_ACC = "train/acc"
LR = "lr"
EPOCH = "epoch"
STEP_METRICS = (TRAIN_LOSS, TRAIN_ACC, LR, EPOCH)
# torch's compute threads, at the steps where the training changed them (`trainers.threads`).
THREADS = "perf/threads"

# ----- every evaluation interval --------------------------------------------------------------
VAL_LOSS = "val/loss"
VAL_ACC = "val/acc"
# Best so far, logged at an evaluation whenever it improves, so the MLflow runs table can sort
# by the best value and not only by the last one: the lowest val/loss, the highest val/acc,
# and the step of the best value of the monitored metric (`train.monitor`).
BEST_LOSS = "best/val_loss"
BEST_ACC = "best/val_acc"
BEST_AT_STEP = "best/step"
BEST_METRICS = (BEST_LOSS, BEST_ACC, BEST_AT_STEP)
VAL_METRICS = (VAL_LOSS, VAL_ACC, *BEST_METRICS)

# ----- once, at the last step, after training -------------------------------------------------
TEST_LOSS = "test/loss"
TEST_ACC = "test/acc"
TEST_MACRO_F1 = "test/macro_f1"
SAMPLES_PER_S = "perf/samples_per_s"
TRAIN_SECONDS = "perf/train_seconds"
WALL_TIME_S = "perf/wall_time_s"
END_METRICS = (
    TEST_LOSS,
    TEST_ACC,
    TEST_MACRO_F1,
    SAMPLES_PER_S,
    TRAIN_SECONDS,
    WALL_TIME_S,
)

# Per class of the test split, named by the class names of `class.txt` (Unicode kept):
# `test/f1/体育`, `test/precision/体育`, `test/recall/体育`.
PER_CLASS_PREFIXES = ("test/f1", "test/precision", "test/recall")


def per_class_metric(prefix: str, class_name: str) -> str:
    """`prefix/class_name`, with characters MLflow refuses in a metric name replaced by `_`."""
    safe = "".join(c if c.isalnum() or c in "_-. " else "_" for c in class_name).strip()
    return f"{prefix}/{safe or '_'}"


# Every metric a newsdesk training logs (what `newsdesk resume` checks the store for).
ALL_METRICS = (*STEP_METRICS, THREADS, *VAL_METRICS, *END_METRICS)
# The curves the comparison figure draws on the shared step axis.
CURVE_METRICS = (TRAIN_LOSS, VAL_LOSS, VAL_ACC)

# ----- columns that `runs_frame` derives from the histories -----------------------------------
BEST_VAL_ACC = "best_val/acc"
BEST_VAL_LOSS = "best_val/loss"
STEPS = "steps"

# The promotion rule and the comparison table rank by this unless told otherwise.
DEFAULT_RANK_METRIC = TEST_ACC

# The same curves under the names other trainers give them: Hugging Face's `Trainer` logs
# `loss`, `eval_loss` and `eval_<metric>`, Lightning scripts often `val_loss` and `val_acc`.
# Per run, the first name it has stands for the curve, so `compare` and its figure read runs
# of any trainer.
CURVE_ALIASES: Mapping[str, tuple[str, ...]] = {
    TRAIN_LOSS: (TRAIN_LOSS, "train_loss", "loss"),
    VAL_LOSS: (VAL_LOSS, "eval_loss", "val_loss"),
    VAL_ACC: (VAL_ACC, "eval_accuracy", "eval_acc", "val_acc", "val/accuracy"),
}
# What `compare` ranks by when no --metric is given: the first of these that a run has, with
# its direction (the test split's accuracy, else the last validation's, else a loss).
RANK_PREFERENCE: tuple[tuple[str, str], ...] = (
    (TEST_ACC, "max"),
    ("test_accuracy", "max"),
    ("test/accuracy", "max"),
    ("eval_accuracy", "max"),
    (VAL_ACC, "max"),
    ("val_acc", "max"),
    (TEST_LOSS, "min"),
    ("test_loss", "min"),
    ("eval_loss", "min"),
    (VAL_LOSS, "min"),
    ("val_loss", "min"),
)

# ----- tags -----------------------------------------------------------------------------------
MODEL_TAG = "model"
DATA_FINGERPRINT_TAG = "data.fingerprint"
DATA_SOURCE_TAG = "data.source"
RESUME_CHECKPOINT_TAG = "newsdesk.resume_checkpoint"
# A key chosen by the client before it creates the run: finds a run created twice.
RUN_KEY_TAG = "newsdesk.run_key"
# Why a run ended FAILED (a diverged loss, say), in one line.
FAILURE_REASON_TAG = "newsdesk.failure_reason"
# Set when the store refused entries for good: how many, the first error, and the file that
# keeps them (the run then ends FAILED rather than FINISHED).
REJECTED_TAG = "newsdesk.rejected"
# Set by the shipper when lines of the run's log were damaged (not records): they are kept in
# a `.corrupt` file beside the log, and the run ends FAILED.
DAMAGED_TAG = "newsdesk.damaged_log"
# Set with a provisional FAILED end by a logger that closed with points still in its log
# because its shipper kept dying: how many, why, where. `newsdesk sync` stores them, applies
# the run's own end and removes the tag.
UNSHIPPED_TAG = "newsdesk.unshipped"
# Set by the shipper when the training process died without closing its logger (a SIGKILL,
# say): the run then ends FAILED unless `newsdesk resume` takes it back.
PROCESS_DIED_TAG = "newsdesk.process_died"

# MLflow's nesting tag: a sweep's trials point at the sweep's parent run.
PARENT_RUN_TAG = "mlflow.parentRunId"
# `newsdesk train --seeds N`: the N runs of one model and configuration share this tag's value.
SEED_GROUP_TAG = "newsdesk.seed_group"
# Sweeps (`newsdesk sweep`): on each trial run, and on the parent.
SWEEP_STUDY_TAG = "sweep.study"
SWEEP_TRIAL_TAG = "sweep.trial"
SWEEP_STATE_TAG = "sweep.state"  # COMPLETE, PRUNED, FAIL or INTERRUPTED (a trial's end)
SWEEP_BEST_VALUE = "sweep/best_value"  # on the parent: the best trial's objective
SWEEP_TRIALS = "sweep/trials"  # on the parent: finished (complete + pruned) trials
SWEEP_TRIALS_ARTIFACT = "sweep/trials.csv"
SWEEP_HISTORY_ARTIFACT = "sweep/history.png"

# ----- artifacts ------------------------------------------------------------------------------
TEST_REPORT_ARTIFACT = "metrics/test_report.json"
CONFUSION_ARTIFACT = "plots/confusion.png"
CURVES_ARTIFACT = "plots/curves.png"
MODEL_ARTIFACT = "model"
# Per test example: true label, predicted class, its probability, and the split's digest
# (`tracker.predictions`); what `promote` and `compare --paired` test two runs on.
TEST_PREDICTIONS_ARTIFACT = "predictions/test.npz"


def left_open(status: str, tags: Mapping[str, str]) -> bool:
    """A run its process left without ending it: still RUNNING, or ended FAILED by its
    shipper only because the process died (`PROCESS_DIED_TAG`). Whoever knows why the
    process died (the distributed launcher, a sweep) may still end it with the reason."""
    died = PROCESS_DIED_TAG in tags and FAILURE_REASON_TAG not in tags
    return status == "RUNNING" or (status == "FAILED" and died)


# One JSON record per validation (`trainers.evaluation_log`): the dev confusion matrix and the
# most confident misclassified dev headlines, at `evaluations/dev/step_<global_step>.json`.
EVALUATIONS_DIR = "evaluations/dev"
