"""Notebooks are checked by nbval against their committed outputs, which were made from the demo data.

This applies to the analyst's walkthrough (``notebooks/``) and to the dashboard and audit notebooks that
ship in the package (``dimnb/notebooks/``). When a run collects notebooks and ``$DIMNB_DATA`` is unset,
build a fresh demo data directory (deterministic: demo calls plus the demo audit trail) for this session,
and pin the report clock, so the committed outputs are reproducible anywhere. A demo directory someone
has used (``make demo``) has more audit events and would not match. A run without notebooks (one test
file) builds nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

FIXED_NOW = "2026-11-20T00:00:00Z"
DASHBOARD_USER = "maria"
_made: list[Path] = []


def _is_notebook(item: pytest.Item) -> bool:
    return Path(str(item.fspath)).suffix == ".ipynb"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(_is_notebook(item) for item in items):
        return
    _skip_spark_where_it_cannot_run(items)
    os.environ.setdefault("DIMNB_NOW", FIXED_NOW)
    if os.environ.get("DIMNB_DATA"):
        return
    from dimnb.demo.setup import setup_demo

    root = Path(tempfile.mkdtemp(prefix="dimnb-nbval-"))
    _made.append(root)
    setup_demo(root / "data")
    os.environ["DIMNB_DATA"] = str(root / "data")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """The dashboard gets its user from the server; under nbval its kernel runs as the demo's manager.

    Set before the notebook's kernel starts (it starts with the notebook's first cell) and for that
    notebook only: every other notebook names its user itself.
    """
    if not _is_notebook(item):
        return
    if Path(str(item.fspath)).name == "dashboard.ipynb":
        os.environ["DIMNB_USER"] = DASHBOARD_USER
    else:
        os.environ.pop("DIMNB_USER", None)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """The dashboard's user is for its kernel only: never left behind for the next test in this process."""
    if _is_notebook(item) and Path(str(item.fspath)).name == "dashboard.ipynb":
        os.environ.pop("DIMNB_USER", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    while _made:
        shutil.rmtree(_made.pop(), ignore_errors=True)


def _skip_spark_where_it_cannot_run(items: list[pytest.Item]) -> None:
    """notebooks/spark.ipynb needs Java and pyspark: skipped with the reason where they are truly absent, never in CI."""
    spark_items = [item for item in items if Path(str(item.fspath)).name == "spark.ipynb"]
    if not spark_items:
        return
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        reason = "pyspark is not installed (pip install -e '.[spark]')"
    elif shutil.which("java") is None and not os.path.exists(os.path.join(os.environ.get("JAVA_HOME", "/nonexistent"), "bin", "java")):
        reason = "no Java runtime (apt-get install default-jre-headless)"
    else:
        return
    if os.environ.get("CI"):
        return  # in CI the notebook runs, and fails loudly without Java
    for item in spark_items:
        item.add_marker(pytest.mark.skip(reason=f"Spark cannot run here: {reason}"))
