"""pyproject.toml and environment.yml declare the same packages with the same version bounds; package data is real."""

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
                    + project["optional-dependencies"]["spark"] + project["optional-dependencies"]["postgresql"])
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


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def unmatched_package_data(setuptools: dict, root: Path) -> list[str]:
    """The package-data and data-files patterns that match no file under ``root``."""
    missing = []
    for package, patterns in setuptools.get("package-data", {}).items():
        folder = root.joinpath(*package.split("."))
        missing += [f"{package}: {p}" for p in patterns if not any(f.is_file() for f in folder.glob(p))]
    for target, sources in setuptools.get("data-files", {}).items():
        missing += [f"{target}: {s}" for s in sources if not any(f.is_file() for f in root.glob(s))]
    return missing


def test_every_package_data_pattern_matches_a_file() -> None:
    assert unmatched_package_data(_setuptools_config(), ROOT) == []


def test_a_pattern_that_matches_nothing_is_reported(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "static").mkdir(parents=True)
    (tmp_path / "pkg" / "static" / "app.js").write_text("")
    config = {"package-data": {"pkg": ["static/*.js", "templates/*"]}, "data-files": {"etc": ["conf/x.json"]}}
    assert unmatched_package_data(config, tmp_path) == ["pkg: templates/*", "etc: conf/x.json"]


def test_every_file_the_package_needs_is_package_data() -> None:
    """Each non-Python file inside dimnb/ (static JS/CSS, the shipped notebooks) is covered by a pattern."""
    patterns = _setuptools_config()["package-data"]["dimnb"]
    package = ROOT / "dimnb"
    needed = [f for f in package.rglob("*") if f.is_file() and f.suffix not in (".py", ".pyc")
              and "__pycache__" not in f.parts and ".ipynb_checkpoints" not in f.parts]
    assert {"dashboard.ipynb", "audit.ipynb"} <= {f.name for f in needed}
    uncovered = [str(f.relative_to(package)) for f in needed if not any(f.match(str(package / p)) for p in patterns)]
    assert uncovered == []
