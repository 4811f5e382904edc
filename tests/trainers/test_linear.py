"""The linear baseline: TF-IDF + LinearSVC on real THUCNews slices, its checkpoint, its run."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from tests.conftest import chinese_class_names, write_slice
from tracker import schema
from trainers.checkpoint import load_checkpoint, save_checkpoint
from trainers.cli import main
from trainers.models.linear import LinearClassifier, LinearConfig, fit_linear
from trainers.predict import load_predictor


def _read(path: Path, limit: int, every: int = 1) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for line in path.read_text(encoding="utf-8").splitlines()[::every][:limit]:
        text, label = line.rsplit("\t", 1)
        texts.append(text)
        labels.append(int(label))
    return texts, labels


@pytest.fixture(scope="module")
def splits(thucnews_dir: Path):
    names = (thucnews_dir / "class.txt").read_text(encoding="utf-8").split()
    return (
        _read(thucnews_dir / "train.txt", 3000),
        _read(thucnews_dir / "dev.txt", 500),
        _read(thucnews_dir / "test.txt", 1000, every=10),  # the file is sorted by class
        names,
    )


def test_scores_rank_classes_as_scikit_learns_own_pipeline(splits):
    """Same features and SVM as a plain scikit-learn pipeline: the same predictions."""
    train, dev, test, names = splits
    model = fit_linear(LinearConfig(), "char", train, dev, names)
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
    svm = LinearSVC(random_state=0).fit(vec.fit_transform(train[0]), train[1])
    expected = svm.predict(vec.transform(test[0]))
    proba = model.predict_proba(test[0])
    assert (proba.argmax(axis=1) == expected).mean() > 0.999
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    acc = (proba.argmax(axis=1) == np.asarray(test[1])).mean()
    print(f"linear on 3,000 THUCNews lines: test acc {acc:.4f}, T={model.temperature:.3f}")
    assert acc > 0.75  # ten classes: chance is 0.10


def test_the_temperature_fitted_on_dev_lowers_the_dev_log_loss(splits):
    from trainers.models.calibration import log_loss

    train, dev, _, names = splits
    model = fit_linear(LinearConfig(), "char", train, dev, names)
    scores, labels = model.scores(dev[0]), np.asarray(dev[1])
    fitted = log_loss(scores / model.temperature, labels)
    assert fitted < log_loss(scores, labels)  # raw SVM scores are too flat to be probabilities
    assert fitted <= log_loss(scores / (model.temperature * 1.5), labels)
    assert fitted <= log_loss(scores / (model.temperature / 1.5), labels)


@pytest.mark.parametrize("tokenizer", ["char", "word"])
def test_checkpoint_round_trip_gives_the_same_probabilities(splits, tmp_path, tokenizer):
    train, dev, test, names = splits
    model = fit_linear(LinearConfig(min_df=2), tokenizer, train, dev, names)
    path = save_checkpoint(model.checkpoint(), tmp_path / "linear.pt")
    restored = load_predictor(str(path))
    assert isinstance(restored, LinearClassifier)
    assert load_checkpoint(path)["model_name"] == "linear"  # plain values: weights_only load
    before, after = model.predict_proba(test[0][:300]), restored.predict_proba(test[0][:300])
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)
    frame = restored.predict_frame(["国足0比2负于日本队"])
    assert list(frame.columns[:3]) == ["label", "label_id", "probability"]
    assert [c for c in frame.columns if c.startswith("prob_")] == [f"prob_{n}" for n in names]
    if tokenizer == "word":  # jieba words are added to the characters
        chars = fit_linear(LinearConfig(min_df=2), "char", train, dev, names)
        assert model.num_features > chars.num_features


def test_two_classes_and_a_class_missing_from_train(splits):
    """A binary SVM has one row of coefficients; a class absent from train never wins."""
    train, dev, test, names = splits
    keep = {0, 1}

    def pick(split):
        rows = [(t, y) for t, y in zip(*split, strict=True) if y in keep]
        return [t for t, _ in rows], [y for _, y in rows]

    model = fit_linear(LinearConfig(), "char", pick(train), pick(dev), names)
    texts, labels = pick(test)
    proba = model.predict_proba(texts)
    assert proba.shape == (len(texts), len(names))
    assert set(proba.argmax(axis=1)) <= keep
    assert (proba.argmax(axis=1) == np.asarray(labels)).mean() > 0.85


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="model.C must be a positive"):
        LinearConfig(C=0)
    with pytest.raises(ValueError, match="ngram_min"):
        LinearConfig(ngram_min=3, ngram_max=2)


def test_train_model_linear_logs_a_run_like_the_others_and_serves_raw_text(
    thucnews_dir, tmp_path, store_uri, capsys
):
    data = write_slice(thucnews_dir, tmp_path / "slice", {"train": 2000, "dev": 300, "test": 300})
    names = chinese_class_names(data)
    args = ["train", "--model", "linear", "--data", str(data), "--tracking-uri", store_uri]
    assert main([*args, "--quiet", "--set", "model.C=0.5"]) == 0
    assert "linear: run" in capsys.readouterr().out
    client = MlflowClient(tracking_uri=store_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("newsdesk").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags[schema.MODEL_TAG] == "linear"
    params = run.data.params
    assert params["model.name"] == "linear" and params["model.C"] == "0.5"
    assert int(params["model.num_features"]) > 1000 and float(params["model.temperature"]) > 0
    assert params["data.num_classes"] == "10"
    metrics = run.data.metrics
    for key in (schema.TEST_ACC, schema.TEST_MACRO_F1, schema.VAL_ACC, schema.SAMPLES_PER_S):
        assert key in metrics
    assert metrics[schema.TEST_ACC] > 0.6
    assert schema.per_class_metric("test/f1", names[0]) in metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {schema.CONFUSION_ARTIFACT}
    assert sorted(i.tags[0].value for i in run.inputs.dataset_inputs) == ["dev", "test", "train"]
    # The logged model: raw text in, the label names and class probabilities out.
    mlflow.set_tracking_uri(store_uri)
    try:
        model_id = run.outputs.model_outputs[0].model_id
        model = mlflow.pyfunc.load_model(f"models:/{model_id}")
        out = model.predict(pd.DataFrame({"text": ["国足0比2负于日本队", "央行宣布降准"]}))
    finally:
        mlflow.set_tracking_uri(None)
    assert set(out["label"]) <= set(names)
    assert np.allclose(out[[f"prob_{n}" for n in names]].sum(axis=1), 1.0, atol=1e-5)
