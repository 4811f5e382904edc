"""Where runs go: resolving the tracking URI, experiments, access checks, MLflow internals.

Every other part of `tracker` asks this package which store to talk to (`location`): an
explicit URI, else `MLFLOW_TRACKING_URI`, else the embedded SQLite store in `mlruns/`. It also
finds or creates experiments safely under concurrency (`experiments`), checks credentials before
work starts (`access`), and is the one place that touches MLflow's private functions
(`mlflow_internals`), so that an MLflow upgrade that moves them fails in one module and one test.
"""
