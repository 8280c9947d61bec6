"""The dashboard as a Starlette ASGI app: one page, its vendored assets, and read-only JSON
endpoints. GET only; every store read runs in a worker thread under the state's lock, so the
node's trio loop never waits on a view."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from node.store import StoreError
from node.web import graph, views
from node.web.page import served_page
from node.web.payload import json_bytes
from node.web.state import DashboardSource, DashboardState, ProblemLog

STATIC = Path(__file__).parent / "static"
READERS = 2  # worker threads reading the store for the dashboard at once
_ID = re.compile(r"[0-9a-f]{64}")
# Scripts and styles from this origin only; nothing may frame the page or be posted anywhere.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class _Headers:
    """Adds SECURITY_HEADERS to every response (pure ASGI: no buffering of bodies)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


class _Json(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def dashboard_app(source: DashboardSource,
                  allowed_hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> Starlette:
    """The app for one data source. `allowed_hosts`: Host headers answered (a page another
    site's DNS points at 127.0.0.1 gets 400: no DNS rebinding); ["*"] when bound elsewhere."""
    state = DashboardState(source)
    limiter: list[anyio.CapacityLimiter] = []

    async def read(work: Callable[[], Any]) -> Response:
        if not limiter:
            limiter.append(anyio.CapacityLimiter(READERS))

        def locked() -> bytes | None:
            with state.lock:
                state.refresh()
                found = work()
            # Rendered here too, in the worker: sanitising every string of a record of 16
            # files of control characters took 3.3 s, which on the event loop stalls the node
            # the dashboard runs in.
            return None if found is None else json_bytes(found)

        try:
            body = await anyio.to_thread.run_sync(locked, limiter=limiter[0],
                                                  abandon_on_cancel=True)
        except (StoreError, sqlite3.Error, LookupError) as error:  # damaged, locked, no store yet
            return _Json({"error": str(error)}, status_code=503)
        if body is None:
            return _Json({"error": "not found"}, status_code=404)
        return Response(body, media_type=_Json.media_type)

    def problem_route(view: Callable[[ProblemLog, Request], Any]) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            problem_id = request.path_params["problem"]

            def work() -> Any:
                log = state.log(problem_id) if _ID.fullmatch(problem_id) else None
                return None if log is None else view(log, request)

            return await read(work)

        return endpoint

    async def page(request: Request) -> Response:
        return HTMLResponse(served_page())

    async def version(request: Request) -> Response:
        return await read(lambda: {"version": state.version, "ready": state.dag is not None,
                                   "attempts": sum(len(v.entries) for v in state.logs.values())})

    async def overview(request: Request) -> Response:
        return await read(lambda: views.overview(state))

    async def record(request: Request) -> Response:
        record_id = request.path_params["record"]
        if not _ID.fullmatch(record_id):
            return _Json({"error": "not a record id"}, status_code=404)
        return await read(lambda: views.record_detail(state, record_id))

    async def playbook(request: Request) -> Response:
        return await read(lambda: graph.playbook(state))

    async def simulation(request: Request) -> Response:
        return _Json({"report": source.simulation()})

    routes = [
        Route("/", page),
        Route("/api/version", version),
        Route("/api/overview", overview),
        Route("/api/problem/{problem}", problem_route(
            lambda log, _: views.problem_summary(state, log))),
        Route("/api/problem/{problem}/points", problem_route(
            lambda log, request: views.points(log, views._int(
                request.query_params.get("after"), 0, 0, 1 << 40)))),
        Route("/api/problem/{problem}/rates", problem_route(
            lambda log, _: views.rates(state, log))),
        Route("/api/problem/{problem}/changelog", problem_route(
            lambda log, request: views.changelog(state, log, request.query_params))),
        Route("/api/problem/{problem}/graph", problem_route(
            lambda log, _: graph.graph(state, log))),
        Route("/api/record/{record}", record),
        Route("/api/playbook", playbook),
        Route("/api/simulation", simulation),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[
        Middleware(_Headers),
        Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
    ])
    app.state.dashboard = state  # for warm(): the first read, before anyone asks
    return app


def warm(app: Starlette) -> None:
    """Do the first (full) read of the store now, in the caller's worker thread, so the first
    page does not wait for it (seconds on a problem of 100,000 attempts)."""
    state: DashboardState = app.state.dashboard
    with state.lock, contextlib.suppress(StoreError, sqlite3.Error):  # a request will say
        state.refresh(force=True)
