"""pyproject.toml and environment.yml declare the same packages with the same version bounds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _normalise(spec: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    assert match, spec
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def test_environment_yml_mirrors_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = dict(_normalise(s) for s in project["dependencies"] + project["optional-dependencies"]["test"]
                    + project["optional-dependencies"]["spark"])
    conda: dict[str, str] = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("dependencies:"):].splitlines():
        item = line.strip()
        if not item.startswith("- ") or item.endswith(":") or item.startswith("- -e") or item.startswith("- pip"):
            continue
        name, bounds = _normalise(item[2:])
        if name != "python":
            conda[name] = bounds
    assert conda == declared


def test_python_requirement_matches() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    assert "- python>=3.11" in (ROOT / "environment.yml").read_text()
