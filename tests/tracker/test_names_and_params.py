import pytest

from tracker.logger.params import flatten, to_param_values
from tracker.logger.validation import validate_artifact_path, validate_metric_name


@pytest.mark.parametrize("name", ["train/loss", "val/acc", "perf/samples_per_s", "lr", "a b:c-d.e"])
def test_good_metric_names_pass(name):
    validate_metric_name(name)


@pytest.mark.parametrize("name", ["bad!name", "loss%", "../x", "a/../b", "x" * 251, "", "/abs"])
def test_names_mlflow_would_refuse_raise_value_error(name):
    with pytest.raises(ValueError):
        validate_metric_name(name)


def test_flatten_nested_params_to_dotted_keys():
    assert flatten({"model": {"hidden_size": 128, "rnn": {"layers": 2}}, "lr": 0.1}) == {
        "model.hidden_size": 128,
        "model.rnn.layers": 2,
        "lr": 0.1,
    }


def test_long_param_values_are_truncated_with_a_warning():
    with pytest.warns(UserWarning, match="truncated"):
        values = to_param_values({"vocab": "x" * 7000})
    assert len(values["vocab"]) == 6000


@pytest.mark.parametrize("bad", ["../escape.txt", "/etc/passwd", "a/../../b", "C:\\x.png", ""])
def test_artifact_paths_that_escape_the_run_are_refused(bad):
    with pytest.raises(ValueError):
        validate_artifact_path(bad)


def test_artifact_paths_inside_the_run_are_kept():
    assert validate_artifact_path("plots/confusion.png") == "plots/confusion.png"
