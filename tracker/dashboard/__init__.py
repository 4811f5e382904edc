"""The dashboard side: reading runs back, comparing them, promoting the best, predicting.

`compare` turns an experiment into pandas frames (one row per run; long-form metric histories;
per-class test scores), `plots` draws them, `registry` registers the best run's model and moves
the `champion` alias, and `predict` loads a registered model and predicts on raw headlines. It
reads the metric names that trainers log from `tracker.schema`; it never imports model code.
"""
