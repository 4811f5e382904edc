"""Fixtures for the trainer tests live in tests/conftest.py (shared with the server tests)."""
