"""The page a user gets instead of a dashboard when a kernel cap is reached (no external assets)."""

from __future__ import annotations

from html import escape

from dimnb.server.kernel_limits import KernelCapReached

TOO_MANY_TABS = "Too many open dashboards: close one, then reload this page."
SERVER_FULL = "The server has as many open dashboards as it can hold: try again in a minute."

_STYLE = ("body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;"
          "font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
          "background:#eef2f7;color:#1f2a37}"
          ".card{max-width:420px;background:#fff;border-radius:12px;box-shadow:0 10px 30px rgba(31,42,55,.12);"
          "padding:32px}h1{font-size:19px;margin:0 0 10px}a{color:#2563eb}")


def status_of(refusal: KernelCapReached) -> int:
    """429 for a user's own cap (their own tabs), 503 when the whole server is full."""
    return 429 if refusal.scope == "user" else 503


def refusal_page(refusal: KernelCapReached, *, reload_url: str) -> str:
    text = TOO_MANY_TABS if refusal.scope == "user" else SERVER_FULL
    title = "Too many open dashboards" if refusal.scope == "user" else "Server busy"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · dimnb</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head>'
            f'<body><main class="card" id="dimnb-refusal" data-scope="{escape(refusal.scope)}">'
            f'<h1>{escape(title)}</h1><p>{escape(text)}</p>'
            f'<p><a href="{escape(reload_url)}">Reload</a></p></main></body></html>')
