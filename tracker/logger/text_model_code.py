"""The code MLflow runs to load a newsdesk text model ("models from code").

A logged model holds this file, its configuration (the loader path) and the checkpoint as plain
artifacts: loading it imports code and reads weights with `torch.load(weights_only=True)`, and
never unpickles a Python object, so it loads with MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false.

The model's own code (the tracker and trainers packages) is one zip archive in its `code/`
folder; it goes first on the import path, as MLflow puts a model's code folders, so a Python
without newsdesk installed loads the model. In a process that has imported them already
(`newsdesk predict`), those modules are used. Models logged before the archive have the
packages as folders in `code/`, which MLflow itself puts on the path.
"""

import sys
from pathlib import Path

from mlflow.models import set_model

# `text_model.CODE_ARCHIVE`, spelled out: tracker is not importable before this line.
_ARCHIVE = Path(__file__).parent / "code" / "newsdesk-code.zip"
if _ARCHIVE.is_file() and str(_ARCHIVE) not in sys.path:
    sys.path.insert(0, str(_ARCHIVE))

from tracker.logger.text_model import CheckpointTextModel  # noqa: E402 - needs the archive

set_model(CheckpointTextModel())
