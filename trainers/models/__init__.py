"""The three headline classifiers, one per module."""
