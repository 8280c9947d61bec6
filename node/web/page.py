"""The dashboard's one HTML page: served with its assets as same-origin files, or, for `swarm
report`, with every script, style and the data inlined into one self-contained file."""

from __future__ import annotations

import functools
from pathlib import Path

STATIC = Path(__file__).parent / "static"
SCRIPTS = ("vendor/uPlot.iife.min.js", "vendor/cytoscape.min.js", "dashboard.js")
STYLES = ("vendor/uPlot.min.css", "dashboard.css")
NAV = ('<nav><a href="#/" class="brand">swarm</a><a href="#/">overview</a>'
       '<a href="#/dag">research DAG</a><a href="#/playbook">playbook</a>'
       '<a href="#/simulation">simulation</a><span id="live"></span></nav>')
# An empty icon: without one the browser asks for /favicon.ico (a 404 in the console).
HEAD = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="icon" href="data:,"><title>swarm dashboard</title>')
BODY = '<main id="app"><p class="empty">loading…</p></main>'


@functools.cache
def served_page() -> str:
    styles = "".join(f'<link rel="stylesheet" href="/static/{s}">' for s in STYLES)
    scripts = "".join(f'<script src="/static/{s}"></script>' for s in SCRIPTS)
    return f"{HEAD}{styles}</head><body>{NAV}{BODY}{scripts}</body></html>\n"


def inlined_page(data_json: str, title: str) -> str:
    """The page with its assets and `data_json` (already escaped for a script element by
    node/web/payload.script_json) inlined: opens from a file, with no network."""
    styles = "".join(f"<style>{_asset(s)}</style>" for s in STYLES)
    scripts = "".join(f"<script>{_asset(s)}</script>" for s in SCRIPTS)
    head = HEAD.replace("<title>swarm dashboard</title>", f"<title>{title}</title>")
    return (f"{head}{styles}</head><body>{NAV}{BODY}"
            f'<script type="application/json" id="swarm-data">{data_json}</script>'
            f"{scripts}</body></html>\n")


def _asset(name: str) -> str:
    text = (STATIC / name).read_text(encoding="utf-8")
    # Inside a <script>/<style> element, `</` could close it early; the vendored files have
    # none today, and this keeps it so.
    tag = "script" if name.endswith(".js") else "style"
    return text.replace(f"</{tag}", f"<\\/{tag}")
