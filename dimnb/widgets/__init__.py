"""dimnb's widgets (anywidget): each a Python class with its ES module in ``static/``.

Python decides, the browser draws: widgets ask ``dimnb.reports`` / ``dimnb.sessions``
/ ``dimnb.access`` and put only in-scope facts into their state.
"""

from __future__ import annotations

from dimnb.widgets._guard import keep_errors_out_of_the_browser
from dimnb.widgets.app import AppHeader, CallListApp
from dimnb.widgets.call_table import CallTable
from dimnb.widgets.filter_bar import FilterBar
from dimnb.widgets.player import Player, PlayRequest
from dimnb.widgets.session_view import SessionView

keep_errors_out_of_the_browser()  # a dashboard kernel under `dimnb serve` only

__all__ = ["AppHeader", "CallListApp", "CallTable", "FilterBar", "Player", "PlayRequest", "SessionView"]
