"""Adapters that put `TrainingLogger` under other people's training code.

- `tracker.integrations.lightning`: `NewsdeskLogger`, a Lightning `Logger` (`newsdesk[lightning]`).
- `tracker.integrations.transformers`: `NewsdeskCallback`, a Hugging Face `TrainerCallback`
  (`newsdesk[transformers]`).

Each is a thin layer: the guarantees (non-blocking calls, every point once, Unicode names,
FINISHED/FAILED/KILLED) are the logger's own. They are optional extras, imported only by the
user; nothing else in `tracker` imports them, and they are the only tracker modules allowed to
import torch (to load a checkpoint they logged).
"""
