"""FastText on the linear model's features: the `ngrams` tokens are scikit-learn's character
1-2-grams plus jieba's words, the bag is their TF-IDF vector (idf weights, L2-normalised), the
loss a one-vs-rest hinge, and the margins become probabilities through a temperature fitted
on the dev split; checkpoints from before any of it load as the model they were."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from trainers.data.tokenizers import NgramTokenizer, WordTokenizer
from trainers.models.calibration import log_loss
from trainers.models.ngram_bag import bag_mean, fit_bag_weights, with_derived_ngrams
from trainers.models.registry import build_model, config_from_dict, make_config

TEXTS = [
    "央行宣布下调存款准备金率0.5个百分点",
    "暴雨致多地交通中断  消防员连夜救出被困群众",
    "iPhone 新品发布：国产新能源汽车销量创新高",
    "",
]


def test_the_ngram_tokens_are_the_linear_model_s_character_ngrams_and_marked_words(tmp_path):
    tokenizer = NgramTokenizer(tmp_path)
    chars = TfidfVectorizer(analyzer="char", ngram_range=(1, 2)).build_analyzer()
    words = WordTokenizer(compact_cache=tmp_path)
    for text in TEXTS:
        tokens = tokenizer(text)
        # Characters and bigrams lower-cased, whitespace runs as one space; words as segmented.
        expected = chars(text) + ["w:" + w for w in words(text)]
        assert sorted(tokens) == sorted(expected)
        assert [t for t in tokens if t.startswith("w:")] == ["w:" + w for w in words(text)]
    # In the text's order: a text cut to its first tokens keeps its first words too.
    tokens = tokenizer("央行宣布下调存款准备金率")
    assert tokens[:4] == ["央", "央行", "w:央行", "行"]
    assert tokens.index("w:存款") < tokens.index("存款") + 3
    # A one-character word is a feature apart from the character, as in the linear model's
    # separate word block; no marked word can equal a character or a character bigram.
    tokens = tokenizer("央行宣布下调")
    assert "央" in tokens and all(len(t) > 2 for t in tokens if t.startswith("w:"))
    assert "iphone" not in tokenizer("iPhone")  # no word lower-cased: the linear model's words
    assert "w:iPhone" in tokenizer("iPhone")


def test_the_l2_bag_is_the_tf_idf_vector_of_its_rows():
    table = torch.randn(10, 3)
    bags = torch.tensor([[5, 6, 0], [0, 0, 0], [7, 7, 5]])
    weights = torch.zeros(10)
    weights[5], weights[6], weights[7] = 3.0, 1.0, 0.5
    l2 = bag_mean(table, bags, weights, norm="l2")
    torch.testing.assert_close(l2[0], (3 * table[5] + table[6]) / np.sqrt(10))
    torch.testing.assert_close(l2[1], torch.zeros(3))  # an all-padding bag
    # A row twice counts twice, in the sum and in the norm.
    torch.testing.assert_close(l2[2], (table[7] + 3 * table[5]) / np.sqrt(0.25 + 0.25 + 9))
    plain = bag_mean(table, bags, None, norm="l2")  # no weights: each row weighs 1
    torch.testing.assert_close(plain[2], (2 * table[7] + table[5]) / np.sqrt(3))


def test_the_hinge_loss_is_one_vs_rest():
    model = build_model("fasttext", make_config("fasttext"), 30, 3)
    logits = torch.tensor([[2.0, -0.5, 0.3], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    # Row 1: 0 + (1 - 0.5) + (1 + 0.3); row 2: every class 1 from its margin.
    assert model.training_loss(logits, labels).item() == pytest.approx((1.8 + 3.0) / 2)
    ce = build_model("fasttext", make_config("fasttext", {"loss": "cross_entropy"}), 30, 3)
    expected = torch.nn.functional.cross_entropy(logits, labels)
    assert ce.training_loss(logits, labels).item() == pytest.approx(expected.item())
    assert ce.temperature is None  # probabilities as trained: nothing to calibrate


def test_calibration_fits_the_temperature_on_dev_and_keeps_the_ranking():
    torch.manual_seed(0)
    model = build_model("fasttext", make_config("fasttext"), 40, 4).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    ids = torch.randint(1, 40, (300, 10))
    fit_bag_weights(model, ids)
    with torch.no_grad():
        raw = model(ids)
    # Labels that the scores get right two times in three: margins far from probabilities.
    labels = raw.argmax(1).clone()
    flip = torch.arange(300) % 3 == 0
    labels[flip] = (labels[flip] + 1) % 4
    model.calibrate(ids, labels, batch_size=64, device=torch.device("cpu"))
    fitted = float(model.temperature)
    assert fitted != 1.0
    with torch.no_grad():
        calibrated = model(ids)
    assert torch.equal(calibrated.argmax(1), raw.argmax(1))
    torch.testing.assert_close(calibrated, raw / fitted)
    scores, truth = raw.double().numpy(), labels.numpy()
    best = log_loss(scores / fitted, truth)
    assert best < log_loss(scores, truth)
    assert best <= log_loss(scores / (fitted * 1.5), truth)
    assert best <= log_loss(scores / (fitted / 1.5), truth)
    # Calibrating again starts from the raw scores, not from the calibrated ones.
    model.calibrate(ids, labels, batch_size=64, device=torch.device("cpu"))
    assert float(model.temperature) == pytest.approx(fitted)
    # The temperature is a buffer: the checkpoint's state carries it to prediction.
    loaded = build_model("fasttext", make_config("fasttext"), 40, 4, random_init=False)
    loaded.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(ids), calibrated)


def test_a_checkpoint_from_before_the_ngram_features_loads_as_the_model_it_was():
    """A stored config without `bag_norm`, `loss` and `ngrams` meant the mean of the bag,
    cross-entropy and hashed bigrams: no temperature buffer, so the old state loads strictly."""
    new = {"bag_norm", "loss", "ngrams", "init_std"}
    stored = {k: v for k, v in dataclasses.asdict(make_config("fasttext")).items() if k not in new}
    old = config_from_dict("fasttext", stored)
    assert (old.bag_norm, old.loss, old.ngrams) == ("mean", "cross_entropy", 2)
    old_model = build_model("fasttext", old, 30, 4)
    assert "temperature" not in old_model.state_dict()
    build_model("fasttext", old, 30, 4, random_init=False).load_state_dict(old_model.state_dict())


@pytest.mark.parametrize(
    ("tokenizer", "ngrams"), [("ngrams", 1), ("char+word", 2), ("char", 2), (None, 2)]
)
def test_the_ngram_order_left_to_the_data_follows_the_tokenizer(tokenizer, ngrams):
    config = make_config("fasttext")
    assert config.ngrams == 0
    assert with_derived_ngrams(config, tokenizer).ngrams == ngrams
    explicit = make_config("fasttext", {"ngrams": 3})
    assert with_derived_ngrams(explicit, tokenizer) == explicit
    assert with_derived_ngrams(make_config("lstm"), tokenizer) == make_config("lstm")


def test_a_vocabulary_packed_in_a_checkpoint_reads_back_and_an_old_list_still_loads(tmp_path):
    from trainers.checkpoint import (
        checkpoint_vocab,
        load_checkpoint,
        make_checkpoint,
        save_checkpoint,
    )

    tokens = ("<pad>", "<unk>", "央", "央行", "w:央行", " ", "a\nb", "w:iPhone", "\x1f")
    model = build_model("fasttext", make_config("fasttext"), len(tokens), 2)
    ckpt = make_checkpoint(model, "fasttext", model.config, tokens, ["a", "b"], "ngrams", 8)
    assert "vocab" not in ckpt  # one string and a tensor of lengths, not a list of strings
    loaded = load_checkpoint(save_checkpoint(ckpt, tmp_path / "m.pt"))
    assert checkpoint_vocab(loaded) == tokens
    old = {k: v for k, v in loaded.items() if not k.startswith("vocab_")} | {"vocab": list(tokens)}
    assert checkpoint_vocab(old) == tokens
    damaged = loaded | {"vocab_text": loaded["vocab_text"][:-1]}
    with pytest.raises(ValueError, match="damaged"):
        checkpoint_vocab(damaged)
