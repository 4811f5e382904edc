"""runs_frame, metric_history and `newsdesk compare` against a real SQLite store."""

from __future__ import annotations

import pandas as pd
import pytest

from tracker import TrainingLogger, WriterConfig
from tracker.cli import main
from tracker.dashboard.compare import metric_history, runs_frame


@pytest.fixture
def two_runs(store_uri):
    ids = {}
    for name, hidden, scale in (("a", 64, 1.0), ("b", 128, 2.0)):
        with TrainingLogger(
            "cmp",
            run_name=name,
            tracking_uri=store_uri,
            params={"model": {"hidden_size": hidden}},
            tags={"model": name},
            writer_config=WriterConfig(flush_interval_s=0.05),
        ) as log:
            for step in range(1, 21):
                log.log_metrics({"train/loss": scale / step}, step=step)
                if step % 5 == 0:
                    log.log_metrics(
                        {"val/acc": step / (20 * scale), "val/loss": scale / step}, step=step
                    )
            log.log_metrics({"test/acc": 0.5 / scale, "test/macro_f1": 0.4 / scale}, step=20)
        ids[name] = log.run_id
    return ids


def test_runs_frame_has_one_row_per_run_with_exact_values(store_uri, two_runs):
    frame = runs_frame("cmp", tracking_uri=store_uri).set_index("run_name")
    assert list(frame.index) == ["a", "b"]
    assert frame.loc["a", "run_id"] == two_runs["a"]
    assert frame.loc["b", "model"] == "b"
    assert frame.loc["a", "status"] == "FINISHED"
    assert frame.loc["b", "params.model.hidden_size"] == "128"
    assert frame.loc["a", "test/acc"] == 0.5 and frame.loc["b", "test/acc"] == 0.25
    assert frame.loc["a", "best_val/acc"] == 1.0 and frame.loc["b", "best_val/acc"] == 0.5
    assert frame.loc["b", "best_val/loss"] == 2.0 / 20
    assert frame.loc["a", "steps"] == 20
    assert frame.loc["a", "duration_s"] >= 0
    assert isinstance(frame.loc["a", "start_time"], pd.Timestamp)


def test_metric_history_is_long_form_with_every_point(store_uri, two_runs):
    history = metric_history(
        list(two_runs.values()), ["train/loss", "val/acc"], tracking_uri=store_uri
    )
    assert list(history.columns) == ["run_id", "run_name", "key", "step", "value", "timestamp"]
    assert len(history) == 2 * (20 + 4)
    b_loss = history[(history.run_id == two_runs["b"]) & (history.key == "train/loss")]
    assert b_loss["step"].tolist() == list(range(1, 21))
    assert b_loss["value"].tolist() == pytest.approx([2.0 / s for s in range(1, 21)])
    assert set(history["run_name"]) == {"a", "b"}


def test_unknown_experiment_is_a_value_error(store_uri):
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        runs_frame("nope", tracking_uri=store_uri)


def test_compare_writes_csv_matching_the_store_and_a_png(store_uri, two_runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert (
        main(["compare", "--experiment", "cmp", "--tracking-uri", store_uri, "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert printed.index(" a ") < printed.index(" b "), "ranked by test/acc, best first"
    csv = pd.read_csv(out / "compare.csv").set_index("run_id")
    assert csv.loc[two_runs["a"], "test/acc"] == 0.5
    assert csv.loc[two_runs["b"], "test/macro_f1"] == pytest.approx(0.2)
    png = (out / "compare.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--experiment", "nope"], "unknown experiment 'nope'"),
        (["--experiment", "cmp", "--metric", "test/f9"], "has metric 'test/f9'"),
    ],
)
def test_compare_bad_input_is_one_line_exit_2(store_uri, two_runs, tmp_path, capsys, argv, message):
    assert main(["compare", "--tracking-uri", store_uri, "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_database_and_client_paths_give_the_same_history(store_uri, two_runs):
    from tracker.dashboard.compare import _client_history, client_for

    with TrainingLogger("cmp", run_name="nan", tracking_uri=store_uri) as log:
        log.log_metrics({"train/loss": float("nan")}, step=1)
        log.log_metrics({"train/loss": 0.5}, step=2)
    ids = [*two_runs.values(), log.run_id]
    fast = metric_history(ids, ["train/loss", "val/acc"], tracking_uri=store_uri)
    slow = _client_history(client_for(store_uri), ids, ["train/loss", "val/acc"])
    slow = slow.sort_values(["run_id", "key", "step", "timestamp"], ignore_index=True)
    pd.testing.assert_frame_equal(fast, slow[fast.columns], check_dtype=False)
    assert fast[fast.run_id == log.run_id]["value"].isna().tolist() == [True, False]


def test_per_class_panel_uses_class_txt_names_without_missing_glyphs(trained_store, recwarn):
    from tracker.dashboard.compare import per_class_frame
    from tracker.dashboard.plots import compare_figure

    uri = trained_store["uri"]
    runs = runs_frame("dash", tracking_uri=uri)
    per_class = per_class_frame(runs["run_id"].tolist(), tracking_uri=uri)
    names = (trained_store["data"] / "class.txt").read_text(encoding="utf-8").split()
    assert len(per_class) == len(runs) * len(names) and len(runs) == 4
    for _, group in per_class.groupby("run_id"):
        assert group.sort_values("class_order")["class"].tolist() == names
    history = metric_history(
        runs["run_id"].tolist(), ["train/loss", "val/loss", "val/acc"], tracking_uri=uri
    )
    fig = compare_figure(runs, history, "test/acc", per_class)
    fig.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[-1].get_xticklabels()]
    assert ticks == names
    assert not [w for w in recwarn if "missing from" in str(w.message)]


def _hf_style_run(store_uri: str, name: str, accuracy_scale: float) -> str:
    """A run under the names Hugging Face's Trainer logs: loss, eval_loss, eval_accuracy."""
    with TrainingLogger(
        "hf-like", run_name=name, tracking_uri=store_uri, writer_config=WriterConfig()
    ) as log:
        for step in range(1, 9):
            log.log_metrics(
                {"loss": 2.0 / step, "learning_rate": 0.01, "epoch": step / 4}, step=step
            )
            if step % 4 == 0:
                log.log_metrics(
                    {"eval_loss": 1.5 / step, "eval_accuracy": accuracy_scale * step / 8},
                    step=step,
                )
    return log.run_id


def test_runs_of_other_trainers_compare_without_options(store_uri, tmp_path, capsys):
    """No test/acc anywhere: compare ranks by eval_accuracy, derives the best validation values
    and the steps from the Hugging Face names, and draws their curves (issue 38, item 8)."""
    weaker = _hf_style_run(store_uri, "weaker", 0.5)
    stronger = _hf_style_run(store_uri, "stronger", 0.9)
    frame = runs_frame("hf-like", tracking_uri=store_uri).set_index("run_id")
    assert frame.loc[stronger, "best_val/acc"] == pytest.approx(0.9)
    assert frame.loc[weaker, "best_val/loss"] == pytest.approx(1.5 / 8)
    assert frame.loc[weaker, "steps"] == 8
    out = tmp_path / "report"
    argv = ["compare", "--experiment", "hf-like", "--tracking-uri", store_uri, "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "ranking by eval_accuracy (higher is better" in printed
    assert printed.index("stronger") < printed.index("weaker")
    assert (out / "compare.png").stat().st_size > 20_000


def test_compare_table_shows_counts_as_integers_missing_as_dash_and_one_run_column(
    store_uri, tmp_path, capsys
):
    with TrainingLogger(
        "table", run_name="fasttext", tracking_uri=store_uri, tags={"model": "fasttext"}
    ) as log:
        for step in range(1, 751):
            log.log_metrics({"train/loss": 1.0 / step}, step=step)
        log.log_metrics({"test/acc": 0.8}, step=750)
    with TrainingLogger(
        "table", run_name="baseline", tracking_uri=store_uri, tags={"model": "linear"}
    ) as log:
        log.log_metrics({"test/acc": 0.7}, step=1)  # no train/loss: no steps
    argv = ["compare", "--experiment", "table", "--tracking-uri", store_uri, "--out", str(tmp_path)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[0] == "run" and "model" not in header
    first, second = lines[1].split(), lines[2].split()
    assert first[:2] == ["fasttext", "0.8000"] and "750" in first and "750.0000" not in first
    assert second[:3] == ["baseline", "(linear)", "0.7000"]
    assert "-" in second and not any("NaN" in cell or "NA" in cell for cell in second)


def test_explicit_metric_missing_lists_every_metric_the_runs_have(store_uri, capsys, tmp_path):
    _hf_style_run(store_uri, "only", 0.5)
    argv = [
        "compare",
        "--experiment",
        "hf-like",
        "--tracking-uri",
        store_uri,
        "--out",
        str(tmp_path),
        "--metric",
        "test/acc",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "has metric 'test/acc'; known:" in err
    assert "eval_accuracy" in err and "eval_loss" in err and "learning_rate" in err
