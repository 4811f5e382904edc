"""The logging core: what a training loop hands over, and how it reaches the store exactly once.

It owns `TrainingLogger` (the MLflow-backed logger) and its in-memory twin `MemoryLogger`, the
background writer that takes points off the hot path, the spool and `sync` for what the store
would not take, validation of names at the call, params flattening, the tags every run gets,
continuing a run after a crash (`resume`), and logging a checkpoint as a pyfunc model that
predicts on raw text (`text_model`). It talks to a store through an explicit `MlflowClient`
and run id, never through MLflow's process-wide state.
"""
