"""dimnb: a Jupyter workbench for finding, replaying and auditing recorded phone calls.

``wb = dimnb.open(data_dir, user=LOGIN)`` gives a ``Workbench``: the Call List
(``wb.calls(...)`` → a pandas DataFrame), sessions, saved filters, and the
widgets. The import stays cheap: the workbench (pandas, DuckDB) loads on the
first use of ``dimnb.open``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# ``open`` is left out of ``__all__`` on purpose: ``from dimnb import *`` must not shadow the builtin.
__all__ = ["Filters", "Workbench", "__version__"]

if TYPE_CHECKING:
    from dimnb.filters import Filters
    from dimnb.workbench import Workbench, open_workbench as open  # noqa: A004


def __getattr__(name: str) -> Any:
    if name == "open":
        from dimnb.workbench import open_workbench

        return open_workbench
    if name == "Workbench":
        from dimnb.workbench import Workbench

        return Workbench
    if name == "Filters":
        from dimnb.filters import Filters

        return Filters
    raise AttributeError(f"module 'dimnb' has no attribute {name!r}")
