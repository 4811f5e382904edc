"""The logging API: what a training loop calls, and the run it logs to.

It owns `TrainingLogger` (the MLflow-backed logger: `run_log` holds the calls that append to
the run's log, `runs` creates or reopens the run, `artifacts` stages files) and its in-memory
twin `MemoryLogger`, the rank-zero logger of distributed jobs (`distributed`), validation of
names at the call, params flattening, the tags every run gets, dataset inputs, system metrics,
continuing a run after a crash (`resume`), and logging a checkpoint as a pyfunc model that
predicts on raw text (`text_model`). How the points then reach the store is
`tracker.shipping`'s. It talks to a store through an explicit `MlflowClient` and run id, never
through MLflow's process-wide state.
"""
