"""The n-gram bag's idf weighting: what each row weighs, that the weighted mean is the plain
mean until the weights are fitted, and that checkpoints from before it load unweighted; and
its hash table sized from the training texts."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from trainers.models.ngram_bag import (
    MAX_DERIVED_BUCKETS,
    bag_mean,
    derived_buckets,
    fit_bag_weights,
    idf_weights,
    unit_weights,
    with_derived_buckets,
)
from trainers.models.registry import build_model, config_from_dict, make_config


def test_idf_counts_each_text_once_and_zeroes_rows_no_text_has():
    bags = torch.tensor([[5, 5, 6, 0], [5, 7, 0, 0], [5, 0, 0, 0]])
    weights = idf_weights(bags, rows=10)
    assert weights[5] == pytest.approx(1.0)  # in every text (twice in the first): ln(4/4) + 1
    assert weights[6] == pytest.approx(math.log(4 / 2) + 1)  # in one text of three
    assert weights[7] == weights[6]
    assert weights[0] == 0 and (weights[[1, 2, 3, 4, 8, 9]] == 0).all()  # padding, unseen
    torch.testing.assert_close(idf_weights(bags, rows=10, chunk=1), weights)


def test_the_weighted_mean_weighs_rows_and_ignores_padding():
    table = torch.randn(10, 3)
    bags = torch.tensor([[5, 6, 0], [0, 0, 0], [7, 7, 5]])
    plain = torch.nn.functional.embedding_bag(bags, table, mode="mean", padding_idx=0)
    torch.testing.assert_close(bag_mean(table, bags, unit_weights(10)), plain)
    torch.testing.assert_close(bag_mean(table, bags, None), plain)
    weights = torch.zeros(10)
    weights[5], weights[6], weights[7] = 3.0, 1.0, 0.5
    weighted = bag_mean(table, bags, weights)
    torch.testing.assert_close(weighted[0], 0.75 * table[5] + 0.25 * table[6])
    torch.testing.assert_close(weighted[1], torch.zeros(3))  # an all-padding bag
    # A row twice counts twice: (0.5 + 0.5) / 4 for row 7, 3 / 4 for row 5.
    torch.testing.assert_close(weighted[2], 0.25 * table[7] + 0.75 * table[5])


@pytest.mark.parametrize("name", ["fasttext", "textcnn", "lstm"])
def test_fitting_sets_every_bag_s_weights_and_changes_the_scores(name):
    torch.manual_seed(0)
    model = build_model(name, make_config(name), 30, 4).eval()
    ids = torch.randint(1, 30, (50, 12))
    ids[:, 8:] = 0
    with torch.no_grad():
        before = model(ids)
    fit_bag_weights(model, ids)
    (weights,) = [b for n, b in model.named_buffers() if n.endswith("row_weights")]
    table = model.embedding if name == "fasttext" else model.bag.table
    rows = table.weight.shape[0]
    assert weights.shape == (rows,) and weights[0] == 0 and weights.max() > 1
    with torch.no_grad():
        assert not torch.allclose(model(ids), before)


@pytest.mark.parametrize(
    ("name", "setting"), [("fasttext", "idf"), ("textcnn", "bag_idf"), ("lstm", "bag_idf")]
)
def test_a_checkpoint_from_before_the_idf_weights_loads_as_the_plain_mean(name, setting):
    """A stored config without the setting meant the unweighted bag: the model has no weight
    buffer, so the old state dict loads strictly."""
    today = make_config(name)
    assert getattr(today, setting) is True
    stored = {k: v for k, v in dataclasses.asdict(today).items() if k != setting}
    old_config = config_from_dict(name, stored)
    assert getattr(old_config, setting) is False
    old_model = build_model(name, old_config, 30, 4)
    assert not any(k.endswith("row_weights") for k in old_model.state_dict())
    build_model(name, old_config, 30, 4, random_init=False).load_state_dict(old_model.state_dict())


def test_the_bucket_count_follows_the_distinct_ngrams_of_the_training_texts():
    # Bigrams (5, 6) twice, (6, 7), (7, 5), (6, 5): 4 distinct; padding pairs do not count.
    ids = torch.tensor([[5, 6, 7, 0], [5, 6, 5, 0], [0, 0, 0, 0]])
    assert derived_buckets(ids) == 10_000  # 4, rounded up to a multiple of 10,000
    assert derived_buckets(ids, ngrams=3) == 10_000
    # 30,000 distinct bigrams need 30,000 buckets; 300,000 are capped.
    pairs = torch.arange(1, 60_001).reshape(-1, 2)
    assert derived_buckets(pairs) == 30_000
    many = torch.arange(1, 600_001).reshape(-1, 2)
    assert derived_buckets(many) == MAX_DERIVED_BUCKETS


@pytest.mark.parametrize(("name", "field"), [("fasttext", "buckets"), ("lstm", "bag_buckets")])
def test_a_bucket_count_of_0_is_derived_and_an_explicit_one_kept(name, field):
    pairs = torch.arange(1, 60_001).reshape(-1, 2)
    assert getattr(make_config(name), field) == 0  # the default: left to the corpus
    derived = with_derived_buckets(make_config(name), pairs)
    assert getattr(derived, field) == 30_000
    assert getattr(with_derived_buckets(make_config(name), None), field) == MAX_DERIVED_BUCKETS
    explicit = make_config(name, {field: 5000})
    assert with_derived_buckets(explicit, pairs) == explicit
    model = build_model(name, derived, 30_001, 4)  # the table has the derived rows
    assert max(p.shape[0] for p in model.parameters()) == 30_001 + 30_000
