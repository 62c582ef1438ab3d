"""The few HTML pages the server renders itself (login, logged out, not found). No external assets."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

_STYLE = """
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
  font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
  background:linear-gradient(160deg,#eef2f7 0%,#dde6f0 100%);color:#1f2a37}
.card{width:360px;background:#fff;border-radius:12px;box-shadow:0 10px 30px rgba(31,42,55,.12);padding:32px}
.brand{display:flex;align-items:center;gap:10px;margin-bottom:6px;font-weight:650;font-size:20px}
.brand svg{color:#2563eb}
.sub{color:#5b6777;margin:0 0 22px}
label{display:block;font-weight:600;margin:14px 0 6px}
input[type=text],input[type=password]{width:100%;padding:10px 12px;border:1px solid #c9d2de;border-radius:8px;
  font:inherit}
input:focus{outline:2px solid #93b4f5;border-color:#2563eb}
button{margin-top:22px;width:100%;padding:11px;border:0;border-radius:8px;background:#2563eb;color:#fff;
  font:inherit;font-weight:600;cursor:pointer}
button:hover{background:#1d4ed8}
.msg{padding:10px 12px;border-radius:8px;margin-bottom:6px}
.error{background:#fdecec;color:#9b1c1c}
.info{background:#e8f1fd;color:#1e4b8f}
a{color:#2563eb}
"""

_LOGO = ('<svg width="28" height="28" viewBox="0 0 24 24" aria-hidden="true"><path fill="currentColor" '
         'd="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 '
         '0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.6a1 1 0 0 1-.25 1z"/></svg>')


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head>'
            f'<body><main class="card"><div class="brand">{_LOGO}<span>dimnb</span></div>{body}</main></body></html>')


# The browser keeps a link's fragment (``/dashboard#/call/473``) across the redirect to this page, but never
# sends it to the server: this adds it to the form's ``next`` so that signing in opens the view linked to.
_KEEP_FRAGMENT = """(function () {
  var hash = location.hash, form = document.getElementById("login_form");
  if (!form || hash.length < 2 || hash.length > 2000) return;
  var url = new URL(form.getAttribute("action"), location.href);
  var next = url.searchParams.get("next") || "";
  if (next.indexOf("#") < 0) url.searchParams.set("next", next + hash);
  form.setAttribute("action", url.pathname + url.search);
})();"""


def login_page(*, action: str, next_url: str, xsrf_html: str, error: str | None = None, username: str = "") -> str:
    message = f'<div class="msg error" role="alert">{escape(error)}</div>' if error else ""
    return _page("Sign in · dimnb", (
        '<p class="sub">Call recordings and reports. Sign in with your own account.</p>'
        f"{message}"
        f'<form id="login_form" method="post" action="{escape(action)}?next={escape(quote(next_url, safe="/"))}">'
        f"{xsrf_html}"
        '<label for="username">Username</label>'
        f'<input id="username" name="username" type="text" autocomplete="username" value="{escape(username)}" '
        'autofocus required>'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        '<button type="submit" id="login_submit">Sign in</button></form>'
        f"<script>{_KEEP_FRAGMENT}</script>"
    ))


def logout_page(*, action: str, xsrf_html: str, back_url: str) -> str:
    """Sign-out asks first: only this form's POST (with its XSRF token) signs out, never a link."""
    return _page("Sign out · dimnb", (
        '<p class="sub">Sign out of dimnb on this browser?</p>'
        f'<form method="post" action="{escape(action)}">{xsrf_html}'
        '<button type="submit" id="logout_submit">Sign out</button></form>'
        f'<p><a href="{escape(back_url)}">Back to the dashboard</a></p>'
    ))


def logged_out_page(*, login_url: str) -> str:
    return _page("Signed out · dimnb", (
        '<div class="msg info">You are signed out.</div>'
        f'<p><a href="{escape(login_url)}">Sign in again</a></p>'
    ))


def not_found_page() -> str:
    return _page("Not found · dimnb", '<p class="sub">There is nothing here.</p>')
