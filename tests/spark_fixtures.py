"""One local Spark session for the whole test run (a JVM takes tens of seconds to start), stopped at the end.

Skips only where Spark truly cannot run (no Java, or no pyspark) AND ``$CI``
is unset; in CI (``.ci/run`` installs Java, ``make test`` the [spark] extra)
a missing piece is a failure, never a skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def spark_missing() -> str | None:
    """Why Spark cannot run here, or None."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))):
        return "no Java runtime (apt-get install default-jre-headless)"
    return None


def require_spark() -> None:
    reason = spark_missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"Spark must run in CI: {reason}")
    pytest.skip(f"Spark cannot run here: {reason}")


@pytest.fixture(scope="session")
def spark():  # type: ignore[no-untyped-def]
    require_spark()
    from access_spark import SMALL_DATA_CONFIG
    from dimnb.spark import local_session

    session = local_session("dimnb-tests", config=SMALL_DATA_CONFIG)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
