"""Prediction sorts headlines by length and cuts each batch's padding: the probabilities must be
those of the full padded batch, for every model that allows the cut."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from trainers.data.pipeline import Tensors
from trainers.data.vocab import PAD, UNK, Vocab
from trainers.evaluate import evaluate
from trainers.models.folded_lstm import _gate_table
from trainers.models.ngram_bag import fit_bag_weights
from trainers.models.registry import build_model, make_config
from trainers.predict import Predictor

CHARS = "央行宣布下调存款准备金率个百分点暴雨致多地交通中断消防员连夜救出被困群众国产新能源汽车销量"


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 45, size=n)  # empty, short, and longer than pad_size
    return ["".join(rng.choice(list(CHARS), size=k)) for k in lengths]


@pytest.mark.parametrize("name", ["textcnn", "lstm"])
def test_sorted_and_trimmed_batches_give_the_probabilities_of_full_padding(name):
    torch.manual_seed(0)
    vocab = Vocab((PAD, UNK, *CHARS))
    model = build_model(name, make_config(name), len(vocab), 4)
    for p in model.parameters():  # biases too, so all-padding windows are not all zero
        torch.nn.init.normal_(p, std=0.5)
    predictor = Predictor(model, vocab, "char", 32, ["a", "b", "c", "d"], batch_size=64)
    texts = _texts(500)
    fast = predictor.predict_proba(texts)

    ids = torch.tensor([vocab.encode(list(t), 32) for t in texts])
    with torch.no_grad():
        full = torch.softmax(model.eval()(ids), dim=1).numpy()
    assert model.trailing_pad_needed is not None
    # 1e-5: the LSTM's batches of one length take the fused kernel, which sums in another
    # order than the packed one (differences seen: up to 1.6e-6).
    np.testing.assert_allclose(fast, full, rtol=0, atol=1e-5)
    assert (fast.argmax(1) == full.argmax(1)).all()


@pytest.mark.parametrize("name", ["fasttext", "textcnn", "lstm"])
def test_evaluation_in_batches_by_length_gives_the_loss_and_predictions_of_full_padding(name):
    """The evaluations during training sort the split by length too (`logits_by_length`):
    its loss and predictions, in the split's order, are those of padded batches, and the
    model is left in the mode it was in."""
    torch.manual_seed(1)
    vocab = Vocab((PAD, UNK, *CHARS))
    model = build_model(name, make_config(name), len(vocab), 4)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    ids = torch.tensor([vocab.encode(list(t), 32) for t in _texts(300, seed=1)])
    fit_bag_weights(model, ids)
    data = Tensors(ids, torch.randint(0, 4, (len(ids),)))
    model.train()
    ev = evaluate(model, data, 64, torch.device("cpu"))
    assert model.training
    with torch.no_grad():
        full = model.eval()(ids)
    expected = torch.nn.functional.cross_entropy(full, data.labels).item()
    assert ev.loss == pytest.approx(expected, abs=1e-5)
    np.testing.assert_array_equal(ev.predictions, full.argmax(1).numpy())


def test_textcnn_inference_in_one_product_equals_its_convolutions():
    """TextCNN's inference path (one matrix product, shifted sums) against `Conv1d`."""
    torch.manual_seed(0)
    model = build_model("textcnn", make_config("textcnn"), 50, 4).eval()
    ids = torch.randint(1, 50, (64, 30))
    with torch.no_grad():
        fast = model(ids)
        x = model.embedding(ids).transpose(1, 2)
        pooled = [torch.relu(conv(x)).amax(dim=2) for conv in model.convs]
        assert model.bag is not None  # the default: the n-gram bag beside the convolutions
        slow = model.fc(torch.cat([*pooled, model.bag(ids)], dim=1))
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["fasttext", "textcnn", "lstm"])
def test_inference_with_the_bag_folded_into_the_classifier_gives_the_training_scores(name):
    """Without a gradient the n-gram bag is read through a table folded into the classifier
    (`FoldedTable`); with one, through the bag and the classifier as trained. Same scores."""
    torch.manual_seed(0)
    vocab = Vocab((PAD, UNK, *CHARS))
    model = build_model(name, make_config(name), len(vocab), 4).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    ids = torch.tensor([vocab.encode(list(t), 32) for t in _texts(200, seed=1)])
    fit_bag_weights(model, ids[:100])  # idf weights, 0 for the rows these texts lack
    with torch.no_grad():
        folded = model(ids)
    with torch.enable_grad():
        trained = model(ids).detach()
    # Float32 sums in another order: the error grows with the scores (TextCNN's reach 250 at
    # these weights; differences of 3e-4 seen), a wrong fold is off by whole units.
    atol = 1e-5 * float(trained.abs().max())
    torch.testing.assert_close(folded, trained, rtol=1e-4, atol=atol)
    with torch.no_grad():  # a changed weight (an optimizer step) refolds the table
        model.state_dict()[next(k for k in model.state_dict() if "fc" in k)].mul_(2)
        again = model(ids)
    with torch.enable_grad():
        torch.testing.assert_close(again, model(ids).detach(), rtol=1e-4, atol=2 * atol)


def test_lstm_inference_with_its_input_gates_folded_equals_the_packed_lstm():
    """Without a gradient the LSTM reads each token's input gates from a table
    (`FoldedBiLSTM`); with one, `nn.LSTM` runs on the packed sequence. Same scores, for
    padded batches, empty texts and texts of one token; a changed embedding refolds it."""
    torch.manual_seed(0)
    vocab = Vocab((PAD, UNK, *CHARS))
    model = build_model("lstm", make_config("lstm", {"bag_dim": 0}), len(vocab), 4).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    ids = torch.tensor([vocab.encode(list(t), 32) for t in _texts(200, seed=2)])
    ids[0], ids[1, 1:] = 0, 0
    assert model._folded is not None
    for _ in range(2):
        with torch.no_grad():
            folded = model(ids)
        with torch.enable_grad():
            packed = model(ids).detach()
        torch.testing.assert_close(folded, packed, rtol=1e-5, atol=1e-5)
        with torch.no_grad():  # an optimizer step between two evaluations
            model.embedding.weight.mul_(-1.5)
    two_layers = build_model("lstm", make_config("lstm", {"num_layers": 2}), len(vocab), 4)
    assert two_layers._folded is None  # a layout it does not compute: nn.LSTM


def test_the_lstm_folds_its_gates_on_the_device_of_its_weights():
    """On a GPU the LSTM failed its first evaluation: the gate table multiplied the CUDA
    weights by a CPU tensor ("Expected all tensors to be on the same device", seen on an
    H200). The meta device mixes with CPU tensors no more than CUDA does, so it shows the
    same fault on a machine without a GPU."""
    vocab = Vocab((PAD, UNK, *CHARS))
    model = build_model("lstm", make_config("lstm", {"bag_dim": 0}), len(vocab), 4).to("meta")
    gates, recurrent = _gate_table(model.lstm, model.embedding.weight)
    hidden = model.lstm.hidden_size
    assert gates.device.type == recurrent.device.type == "meta"
    assert gates.shape == (2 * len(vocab), 4 * hidden) and recurrent.shape == (
        2,
        hidden,
        4 * hidden,
    )


@pytest.mark.parametrize("name", ["textcnn", "lstm"])
def test_a_checkpoint_from_before_the_bag_loads_as_the_plain_model(name):
    """A config stored before `bag_dim`, `branch_dropout` and `sparse_embedding` existed
    means the plain model, whatever today's defaults are."""
    import dataclasses

    from trainers.models.registry import config_from_dict

    new = {"bag_dim", "bag_buckets", "branch_dropout", "sparse_embedding", "bag_idf"}
    stored = {k: v for k, v in dataclasses.asdict(make_config(name)).items() if k not in new}
    config = config_from_dict(name, stored)
    assert (config.bag_dim, config.branch_dropout, config.sparse_embedding) == (0, 0.0, False)
    model = build_model(name, config, 40, 4)
    assert model.bag is None and not any(k.startswith("bag.") for k in model.state_dict())
    assert make_config(name).bag_dim > 0  # today's default has the bag


@pytest.mark.slow
def test_loading_the_prediction_code_leaves_scikit_learn_to_the_linear_model():
    """scikit-learn costs 2 s of a fresh `newsdesk predict`; a neural model does not need it,
    so the linear model imports it only when it builds or reads its features. (MLflow itself
    imports scipy.sparse.)"""
    probe = "import sys, trainers.predict; print(sorted({'sklearn'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
