"""The code MLflow runs to load a Lightning checkpoint logged by `NewsdeskLogger`."""

from mlflow.models import set_model

from tracker.integrations.lightning_model import LightningCheckpointModel

set_model(LightningCheckpointModel())
