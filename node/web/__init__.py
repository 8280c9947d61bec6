"""The dashboard in the browser: a read-only Starlette app over a node's data directory, served
by Hypercorn's trio worker inside the node's nursery, and the same views exported as one
self-contained HTML file. The only code that imports the web stack (STYLE 3)."""

from node.web.export import export_report
from node.web.server import DashboardError, is_local, serve_dashboard
from node.web.state import DashboardSource

__all__ = ["DashboardError", "DashboardSource", "export_report", "is_local", "serve_dashboard"]
