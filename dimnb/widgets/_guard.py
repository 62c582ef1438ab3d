"""Widget callbacks run on input from the browser, which anyone can forge.

``guarded`` wraps a handler so that nothing it raises reaches the browser
(ipywidgets would send the whole traceback): a ``DimnbError`` becomes its own
plain message, anything else is logged server-side and replaced by a sentence.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from dimnb.errors import DimnbError

log = logging.getLogger("dimnb.widgets")

F = TypeVar("F", bound=Callable[..., Any])

UNAVAILABLE = "That recording is not available."
FAILED = "Something went wrong; the details are in the server log."


def _report(widget: Any, text: str, field: str | None) -> None:
    """Show a message: a widget with a form marks the field too (``report_error``), others set ``message``."""
    report = getattr(widget, "report_error", None)
    if report is not None:
        report(text, field)
    else:
        widget.message = text


def guarded(what: str) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except DimnbError as exc:
                _report(self, str(exc), getattr(exc, "field", None))
            except Exception:
                log.exception("%s failed in %s", what, type(self).__name__)
                _report(self, FAILED, None)
            return None

        return wrapper  # type: ignore[return-value]

    return decorate


def as_id(value: Any) -> int | None:
    """A positive database id from untrusted input (ints only: no bools, floats or strings)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value < 2**63 else None


def as_seconds(value: Any) -> float | None:
    """A finite, non-negative number of seconds from untrusted input."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


SERVER_ENV = "DIMNB_SERVER"  # set by `dimnb serve` in every dashboard kernel's environment


def keep_errors_out_of_the_browser() -> bool:
    """In a dashboard kernel: errors go to the server's log, never to the browser.

    ipywidgets answers a message it cannot apply (a forged trait update of the
    wrong type, a malformed comm message), to any widget, with the full
    traceback, paths included, on the kernel websocket; and a log record with
    no handler lands on the kernel's ``sys.stderr``, which is the browser too.
    So dimnb's loggers write to the process's real stderr (the server log) and
    the shell's ``showtraceback`` logs there instead. Only under ``dimnb
    serve``: an analyst in JupyterLab keeps their tracebacks. Returns whether
    it was installed.
    """
    if not os.environ.get(SERVER_ENV):
        return False
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [kernel %(process)d] %(name)s: %(message)s"))
    package = logging.getLogger("dimnb")
    if not any(getattr(h, "_dimnb_server_log", False) for h in package.handlers):
        handler._dimnb_server_log = True  # type: ignore[attr-defined]
        package.addHandler(handler)
        package.propagate = False
        package.setLevel(logging.INFO)
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    if shell is not None:
        def to_the_log(*args: object, **kwargs: object) -> None:
            log.error("a widget message failed (not shown to the browser)", exc_info=sys.exc_info())

        shell.showtraceback = to_the_log  # type: ignore[method-assign]
    return True
