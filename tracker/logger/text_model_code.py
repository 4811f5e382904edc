"""The code MLflow runs to load a newsdesk text model ("models from code").

A logged model holds this file, its configuration (the loader path) and the checkpoint as plain
artifacts: loading it imports code and reads weights with `torch.load(weights_only=True)`, and
never unpickles a Python object, so it loads with MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false.
"""

from mlflow.models import set_model

from tracker.logger.text_model import CheckpointTextModel

set_model(CheckpointTextModel())
