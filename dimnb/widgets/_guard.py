"""Widget callbacks run on input from the browser, which anyone can forge.

``guarded`` wraps a handler so that nothing it raises reaches the browser
(ipywidgets would send the whole traceback): a ``DimnbError`` becomes its own
plain message, anything else is logged server-side and replaced by a sentence.
"""

from __future__ import annotations

import functools
import logging
import math
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
