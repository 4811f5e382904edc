"""newsdesk's training side: data, tokenizers, models, the training loop and prediction.

It talks to MLflow only through the logger interface of `tracker`.
"""
