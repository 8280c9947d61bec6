"""The dashboard's JSON API over a real data directory (a real small `swarm run`, then more of
it): every attempt listed, `?after=N` returns only what is new, GET only, loopback Host only,
peer text sanitised, JSON never NaN; and the app served by Hypercorn in a trio nursery."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from node.store import RecordStore
from node.web import DashboardSource, serve_dashboard
from node.web.app import dashboard_app
from node.web.payload import json_bytes, script_json
from research_dag import Experiment
from tests.web_run import add_hostile_claim, real_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("web-api")
    real_run(directory, iterations=12)
    return directory


@pytest.fixture
def client(run_dir: Path) -> Iterator[tuple[TestClient, RecordStore]]:
    with RecordStore.open(run_dir / "records.sqlite") as store:
        app = dashboard_app(DashboardSource(store=lambda: store), allowed_hosts=["testserver"])
        with TestClient(app) as test_client:
            yield test_client, store


def _experiments(store: RecordStore, problem_id: str) -> list[Experiment]:
    return [e for e in store.iter_records(kind="experiment", problem=problem_id)
            if isinstance(e, Experiment)]


def _problem_id(client: TestClient) -> str:
    problems = client.get("/api/overview").json()["problems"]
    assert len(problems) == 1
    return str(problems[0]["id"])


def test_overview_problem_and_points_show_every_attempt_of_a_real_run(
        client: tuple[TestClient, RecordStore]) -> None:
    http, store = client
    overview = http.get("/api/overview").json()
    problem = overview["problems"][0]
    held = _experiments(store, problem["id"])
    assert problem["attempts"] == len(held) >= 2
    scores = [e.outcome.score for e in held if e.outcome.score is not None]
    assert problem["best"] == max(scores) and problem["baseline"] == held[0].outcome.score
    summary = http.get(f"/api/problem/{problem['id']}").json()
    assert summary["best_experiment"]["score"] == max(scores)
    assert summary["best_experiment"]["diff"].startswith("--- baseline/")
    points = http.get(f"/api/problem/{problem['id']}/points").json()
    assert sorted(points["y"], key=str) == sorted(
        [e.outcome.score if e.outcome.status == "ok" else None for e in held], key=str)
    assert points["next"] == len(held) and not points["downsampled"]
    assert points["s"][0] == "b" and "k" in points["s"]
    again = http.get(f"/api/problem/{problem['id']}/points?after={points['next']}").json()
    assert again["n"] == [] and again["next"] == len(held)


def test_the_changelog_lists_every_attempt_newest_first_and_filters(
        client: tuple[TestClient, RecordStore]) -> None:
    http, store = client
    problem_id = _problem_id(http)
    held = _experiments(store, problem_id)
    page = http.get(f"/api/problem/{problem_id}/changelog?limit=500").json()
    assert [row["id"] for row in page["rows"]] == [e.id for e in reversed(held)]
    first = http.get(f"/api/problem/{problem_id}/changelog?limit=2").json()
    second = http.get(f"/api/problem/{problem_id}/changelog?limit=2&offset={first['next']}").json()
    assert [r["id"] for r in first["rows"] + second["rows"]] == [
        r["id"] for r in page["rows"][:4]]
    kept = http.get(f"/api/problem/{problem_id}/changelog?status=keep").json()["rows"]
    assert kept and all(row["status"] == "keep" for row in kept)
    word = held[-1].mutation_kind
    found = http.get(f"/api/problem/{problem_id}/changelog", params={"q": word}).json()["rows"]
    assert found and all(word in row["mutation_kind"] + row["description"] + row["hypothesis"]
                         for row in found)


def test_a_record_shows_its_diff_lineage_and_links(client: tuple[TestClient, RecordStore]
                                                   ) -> None:
    http, store = client
    problem_id = _problem_id(http)
    child = next(e for e in reversed(_experiments(store, problem_id)) if e.parent is not None)
    record = http.get(f"/api/record/{child.id}").json()
    assert record["kind"] == "experiment" and record["fields"]["parent"] == child.parent
    assert record["lineage"][-1]["id"] == child.id and len(record["lineage"]) >= 2
    assert record["diff"] == child.diff or record["diff"].startswith("--- parent/")
    assert http.get(f"/api/record/{problem_id}").json()["kind"] == "problem"
    assert http.get("/api/record/" + "0" * 64).status_code == 404
    assert http.get("/api/record/not-an-id").status_code == 404
    graph = http.get(f"/api/problem/{problem_id}/graph").json()
    ids = {node["id"] for node in graph["nodes"]}
    assert child.id in ids and problem_id in ids
    assert all(math.isfinite(node["x"]) and math.isfinite(node["y"]) for node in graph["nodes"])
    assert all(edge["source"] in ids and edge["target"] in ids for edge in graph["edges"])


def test_new_experiments_arrive_after_the_cursor_only(run_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "growing"
    real_run(directory, iterations=3)
    with RecordStore.open(directory / "records.sqlite") as store:
        app = dashboard_app(DashboardSource(store=lambda: store, external=True, refresh_s=0.0),
                            allowed_hosts=["testserver"])
        with TestClient(app) as http:
            problem_id = _problem_id(http)
            before = http.get(f"/api/problem/{problem_id}/points").json()
            version = http.get("/api/version").json()["version"]
            real_run(directory, iterations=8, seed=1)  # another process writes the store
            assert http.get("/api/version").json()["version"] > version
            fresh = http.get(f"/api/problem/{problem_id}/points?after={before['next']}").json()
            held = _experiments(store, problem_id)
            assert fresh["next"] == len(held) > before["next"]
            assert fresh["n"] == list(range(before["next"], len(held)))


def test_get_only_loopback_hosts_only_and_safe_headers(client: tuple[TestClient, RecordStore]
                                                       ) -> None:
    http, _ = client
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert http.request(method, "/api/overview").status_code == 405
        assert http.request(method, "/").status_code == 405
    page = http.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert http.get("/api/overview", headers={"host": "evil.example"}).status_code == 400


def test_a_peers_text_reaches_the_api_sanitised(run_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "hostile"
    real_run(directory, iterations=2)
    claim = add_hostile_claim(directory)
    with RecordStore.open(directory / "records.sqlite") as store:
        app = dashboard_app(DashboardSource(store=lambda: store), allowed_hosts=["testserver"])
        with TestClient(app) as http:
            problem_id = _problem_id(http)
            rows = http.get(f"/api/problem/{problem_id}/changelog").json()["rows"]
            mine = next(row for row in rows if row["id"] == claim.id)
            assert mine["status"] == "unverified"  # a peer's claim nobody replayed
            record = http.get(f"/api/record/{claim.id}")
    for text in (mine["description"], record.json()["fields"]["stderr_tail"]):
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
        assert "\\x1b" in text and "\\u202e" in text
    assert record.text.isascii()


@given(st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20))
def test_json_is_always_finite_ascii_and_inert_in_a_script_element(document: object) -> None:
    text = json_bytes(document).decode("ascii")
    json.loads(text, parse_constant=pytest.fail)  # NaN, Infinity: not JSON
    embedded = script_json(document)
    assert "<" not in embedded and ">" not in embedded and "&" not in embedded
    assert json.loads(embedded) == json.loads(text)


async def test_the_dashboard_runs_as_a_task_in_a_trio_nursery(run_dir: Path) -> None:
    with RecordStore.open(run_dir / "records.sqlite") as store:
        source = DashboardSource(store=lambda: store)
        async with trio.open_nursery() as nursery:
            url = await nursery.start(lambda task_status: serve_dashboard(
                source, port=0, task_status=task_status))
            assert url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(base_url=url) as http:
                overview = (await http.get("/api/overview")).json()
                assert overview["problems"][0]["attempts"] >= 2
                page = await http.get("/")
                assert page.status_code == 200 and "/static/dashboard.js" in page.text
            nursery.cancel_scope.cancel()


async def test_a_view_is_rendered_off_the_event_loop(run_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A view's JSON is rendered in the worker that built it: sanitising a record of 16 files
    of control characters took 3.3 s, which on the trio thread stalls the node the dashboard
    runs in. The renderer here waits for a trio task: on the trio thread it would wait for
    itself, and fail."""
    import threading

    import node.web.app as app

    started, release = threading.Event(), threading.Event()
    render = app.json_bytes

    def waiting(document: object) -> bytes:
        started.set()
        if not release.wait(30.0):
            raise AssertionError("the event loop did not run while the view was rendered")
        return render(document)

    monkeypatch.setattr(app, "json_bytes", waiting)
    with RecordStore.open(run_dir / "records.sqlite") as store:
        source = DashboardSource(store=lambda: store)
        async with trio.open_nursery() as nursery:
            url = await nursery.start(lambda task_status: serve_dashboard(
                source, port=0, task_status=task_status))
            answers = []
            answered = trio.Event()

            async def ask() -> None:
                async with httpx.AsyncClient(base_url=url) as http:
                    answers.append((await http.get("/api/overview")).json())
                answered.set()

            nursery.start_soon(ask)
            await trio.to_thread.run_sync(started.wait)
            release.set()
            await answered.wait()
            assert answers[0]["problems"][0]["attempts"] >= 2
            nursery.cancel_scope.cancel()


def test_the_playbook_page_derives_again_only_as_often_as_its_cost_allows(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The playbook page shows what `swarm playbook` shows, derived from the store (a
    derivation reads every experiment: 1.2 s at 20,000, under the lock every page waits on).
    A change to the store derives it again, but not sooner than PLAYBOOK_EVERY_S after the
    last time, nor sooner than PLAYBOOK_COST times what that one took."""
    from node.web import graph

    derived: list[int] = []
    real = graph.shown_patterns

    def counted(*args: object, **kwargs: object) -> object:
        derived.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(graph, "shown_patterns", counted)
    clock = [1000.0]
    monkeypatch.setattr(graph.time, "monotonic", lambda: clock[0])
    with RecordStore.open(run_dir / "records.sqlite") as store:
        app = dashboard_app(DashboardSource(store=lambda: store), allowed_hosts=["testserver"])
        with TestClient(app) as client:
            first = client.get("/api/playbook").json()
            assert len(derived) == 1 and all(p["derived_here"] for p in first["patterns"])
            client.get("/api/playbook")
            assert len(derived) == 1  # nothing changed
            state = app.state.dashboard
            state.version += 1  # the store changed ...
            client.get("/api/playbook")
            assert len(derived) == 1  # ... within PLAYBOOK_EVERY_S of the last derivation
            clock[0] += graph.PLAYBOOK_EVERY_S
            again = client.get("/api/playbook").json()
            assert len(derived) == 2 and again["patterns"] == first["patterns"]
