"""Serving the dashboard: Hypercorn's trio worker runs the app as one task in the caller's
nursery (the node's), bound to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import logging

import trio

from node.web.state import DashboardSource

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class DashboardError(Exception):
    """The dashboard cannot listen (port taken, address not ours); the message says which."""


def is_local(host: str) -> bool:
    return host in LOCAL_HOSTS


async def serve_dashboard(source: DashboardSource, *, host: str = "127.0.0.1", port: int = 8321,
                          task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled; started once listening, with the page's URL (port 0: a free
    one). A host other than the loopback answers any Host header (the operator chose to
    publish it); on the loopback only 127.0.0.1 and localhost (no DNS rebinding)."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    from node.web.app import dashboard_app, warm  # the web stack loads only when served

    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.errorlog = logging.getLogger("node.web")  # "Running on ...": ours to print
    config.accesslog = None
    config.graceful_timeout = 1.0
    allowed = ["127.0.0.1", "localhost", "[::1]"] if is_local(host) else ["*"]
    app = dashboard_app(source, allowed_hosts=allowed)

    async def run(*, task_status: trio.TaskStatus[list[str]]) -> None:
        await serve(app, config, task_status=task_status)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        try:
            binds = await nursery.start(run)
        except* OSError as group:  # the port is taken, the address is not this machine's
            error = group.exceptions[0]
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise DashboardError(f"the dashboard cannot listen on {host}:{port}: {reason}"
                                 ) from None
        task_status.started((str(binds[0]) if binds else f"http://{host}:{port}") + "/")
        await trio.to_thread.run_sync(warm, app, abandon_on_cancel=True)
