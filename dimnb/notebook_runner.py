"""Run a dimnb notebook headless with parameters, papermill-style, and save it as a notebook or HTML.

Values are injected as a new cell tagged ``injected-parameters`` right after
the cell tagged ``parameters`` (whose defaults they override). Only the values
given are injected, so a run without parameters reproduces the committed
notebook exactly (that is how its outputs are refreshed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat

from dimnb.errors import DimnbError, InvalidInput

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
# The dashboard and audit notebooks ship inside the package, so an installed dimnb serves and reports
# without a checkout; the top-level notebooks/ are the analyst's walkthrough.
PACKAGED_NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


class NotebookFailed(DimnbError):
    """A cell raised while the notebook ran headless."""


def inject_parameters(nb: nbformat.NotebookNode, values: Mapping[str, Any]) -> nbformat.NotebookNode:
    """Insert ``name = repr(value)`` lines after the ``parameters`` cell (replacing an earlier injection)."""
    cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    index = next((i for i, c in enumerate(cells) if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])), None)
    if index is None:
        raise InvalidInput("the notebook has no cell tagged 'parameters'", field="notebook")
    nb.cells = cells
    if values:
        source = "# Parameters injected by dimnb\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items())
        cell = nbformat.v4.new_code_cell(source.rstrip("\n"), metadata={"tags": [INJECTED_TAG]})
        cell.id = INJECTED_TAG
        nb.cells.insert(index + 1, cell)
    return nb


def run_notebook(
    path: Path,
    values: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    timeout: int = 600,
) -> nbformat.NotebookNode:
    """Execute the notebook at ``path`` (kernel cwd = its folder) with injected values and extra environment."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    inject_parameters(nb, dict(values or {}))
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=kernel, allow_errors=False, record_timing=False,
        # ipykernel warns on its own stderr that local TCP is unencrypted; not news for a report run.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    try:
        client.execute(cwd=str(path.parent), env={**os.environ, **(env or {})})
    except CellExecutionError as exc:
        message = str(exc).strip().splitlines()
        raise NotebookFailed(f"{path.name} failed: {message[-1] if message else exc}") from exc
    return nb


def save(nb: nbformat.NotebookNode, out: Path, *, show_code: bool = False) -> Path:
    """``.ipynb`` as is; ``.html`` through nbconvert (code cells hidden unless ``show_code``)."""
    suffix = out.suffix.lower()
    if suffix == ".ipynb":
        nbformat.write(nb, str(out))
    elif suffix in (".html", ".htm"):
        from nbconvert import HTMLExporter

        exporter = HTMLExporter(exclude_input=not show_code, exclude_input_prompt=True, exclude_output_prompt=True)
        body, _ = exporter.from_notebook_node(nb)
        out.write_text(body, encoding="utf-8")
    else:
        raise InvalidInput(f"--out must end in .ipynb or .html, not {out.name!r}", field="out")
    return out
