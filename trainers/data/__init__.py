"""Reading corpora, tokenizing, vocabularies, caching and pretrained vectors."""

from trainers.data.corpus import Corpus, DataError, Split, load_corpus
from trainers.data.pipeline import DataConfig, PreparedData, prepare_data

__all__ = [
    "Corpus",
    "DataConfig",
    "DataError",
    "PreparedData",
    "Split",
    "load_corpus",
    "prepare_data",
]
