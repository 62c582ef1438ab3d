"""Docs kept honest: every command documented by its own --help in docs/cli.md, every action in docs/access.md.

Regenerate docs/cli.md after changing a command: ``DIMNB_UPDATE_DOCS=1 pytest tests/test_docs.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from click.testing import CliRunner

from dimnb.actions import ALL_ACTIONS
from dimnb.cli import main

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = ROOT / "docs" / "cli.md"


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    ctx = click.Context(group)
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))


def render_cli_reference() -> str:
    runner = CliRunner()
    parts = ["# dimnb command reference\n",
             "Generated from each command's `--help` by `tests/test_docs.py` (`DIMNB_UPDATE_DOCS=1`).\n"]
    for path, _command in [((), main), *_commands(main)]:
        result = runner.invoke(main, [*path, "--help"], terminal_width=100)
        assert result.exit_code == 0, (path, result.output)
        title = " ".join(("dimnb", *path))
        parts.append(f"## `{title}`\n\n```\n{result.output.strip()}\n```\n")
    return "\n".join(parts)


def test_every_command_has_help() -> None:
    for path, command in _commands(main):
        assert (command.help or "").strip(), f"dimnb {' '.join(path)} has no help text"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and param.name != "help":
                assert (param.help or "").strip(), f"dimnb {' '.join(path)} {param.opts[0]} has no help"


def test_the_cli_reference_matches_the_commands() -> None:
    text = render_cli_reference()
    if os.environ.get("DIMNB_UPDATE_DOCS"):
        CLI_DOC.write_text(text)
    assert CLI_DOC.read_text() == text, "docs/cli.md is stale: DIMNB_UPDATE_DOCS=1 pytest tests/test_docs.py"


def test_every_action_is_documented() -> None:
    access_doc = (ROOT / "docs" / "access.md").read_text()
    for action in ALL_ACTIONS:
        assert f"`{action.name}`" in access_doc, f"action {action.name} is not documented in docs/access.md"


def test_the_readme_names_the_two_commands_and_docs_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    for target in ("demo:", "test:"):
        assert target in (ROOT / "Makefile").read_text()
    import re

    for link in re.findall(r"\]\(([^)#]+)\)", readme):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), f"README links to a missing file: {link}"
