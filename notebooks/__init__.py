"""Lets pytest import notebooks/conftest.py as notebooks.conftest, apart from tests/conftest.py."""
