from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_slice
from trainers.data import DataConfig, prepare_data


@pytest.fixture(scope="module")
def prepared(thucnews_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A 2,000-headline slice of THUCNews, tokenized once per module."""
    root = tmp_path_factory.mktemp("server-data")
    data = write_slice(thucnews_dir, root / "slice", {"train": 2000, "dev": 200, "test": 200})
    return prepare_data(DataConfig(data=data, cache_dir=root / "cache"))
