"""`newsdesk train --seeds N`: N runs per model with consecutive seeds, grouped by a tag, and a
compare table and figure that show each group's spread."""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient

from tests.conftest import SMALL_MODELS, write_slice
from tracker import schema
from tracker.cli import main


def test_three_seeds_give_three_grouped_runs_per_model_and_a_spread(
    thucnews_dir, store_uri, tmp_path, capsys
):
    data = write_slice(thucnews_dir, tmp_path / "slice", {"train": 1000, "dev": 200, "test": 200})
    common = ["--tracking-uri", store_uri, "--experiment", "seeds"]
    code = main(
        [
            "train",
            "--model",
            "all",
            "--data",
            str(data),
            "--seeds",
            "3",
            "--seed",
            "7",
            "--max-steps",
            "8",
            "--quiet",
            "--no-system-metrics",
            *SMALL_MODELS,
            *common,
        ]
    )
    assert code == 0
    client = MlflowClient(tracking_uri=store_uri)
    experiment = client.get_experiment_by_name("seeds").experiment_id
    runs = client.search_runs([experiment])
    by_model: dict[str, list] = {}
    for run in runs:
        by_model.setdefault(run.data.tags[schema.MODEL_TAG], []).append(run)
    assert sorted(by_model) == ["fasttext", "linear", "lstm", "textcnn"]
    for model, mine in by_model.items():
        assert len(mine) == 3, model
        assert len({r.data.tags[schema.SEED_GROUP_TAG] for r in mine}) == 1
        if model != "linear":  # the linear model is fitted without a seed
            assert sorted(r.data.params["train.seed"] for r in mine) == ["7", "8", "9"]
        assert sorted(r.info.run_name for r in mine) == [f"{model}-seed{s}" for s in (7, 8, 9)]
    groups = {r.data.tags[schema.SEED_GROUP_TAG] for r in runs}
    assert len(groups) == 4
    # The seeds change a neural model's training: its three runs do not all end alike.
    lstm_losses = {round(r.data.metrics["test/loss"], 6) for r in by_model["lstm"]}
    assert len(lstm_losses) > 1

    capsys.readouterr()
    assert main(["compare", *common, "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "seed groups (mean ± std over the runs; min to max):" in out
    group_lines = [line for line in out.splitlines() if line.startswith("  ") and "3 runs" in line]
    assert len(group_lines) == 4
    lstm_line = next(line for line in group_lines if line.strip().startswith("lstm"))
    accs = [r.data.metrics["test/acc"] for r in by_model["lstm"]]
    mean, std = pd.Series(accs).mean(), pd.Series(accs).std(ddof=1)
    assert f"test/acc {mean:.4f} ± {std:.4f} ({min(accs):.4f} to {max(accs):.4f})" in lstm_line
    saved = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert saved["seed_group"].nunique() == 4
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 10_000
