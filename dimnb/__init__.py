"""dimnb: a Jupyter workbench for finding, replaying and auditing recorded phone calls."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
