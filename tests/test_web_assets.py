"""The dashboard works offline: every vendored file is the one its manifest names (sha256), with
its licence; nothing served or exported refers to an http:// or https:// asset; the wheel ships
every static file; the exported report inlines everything and keeps a peer's text inert."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from node.store import RecordStore
from node.web import DashboardSource, export_report
from node.web.app import dashboard_app
from tests.web_run import HOSTILE, add_hostile_claim, real_run

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "node" / "web" / "static"
VENDOR = STATIC / "vendor"
# An asset reference: src= or href= (quoted or not), CSS url(...), or @import.
ASSET = re.compile(r"""(?:\bsrc\s*=|\bhref\s*=|url\(|@import)\s*["']?\s*(https?:)?//""", re.I)


def test_every_vendored_file_matches_its_manifest() -> None:
    manifest = json.loads((VENDOR / "manifest.json").read_text())
    listed = {entry["file"]: entry for entry in manifest["files"]}
    present = {p.name for p in VENDOR.iterdir() if p.name != "manifest.json"}
    assert present == set(listed)
    for name, entry in listed.items():
        digest = hashlib.sha256((VENDOR / name).read_bytes()).hexdigest()
        assert digest == entry["sha256"], f"{name} is not the file the manifest names"
        assert entry["license"] and entry["version"] and entry["package"]
    for package in {entry["package"] for entry in listed.values()}:
        assert any(e["package"] == package and e["file"].endswith("LICENSE")
                   for e in listed.values()), f"{package} ships without its licence"


def test_the_asset_pattern_finds_remote_assets() -> None:
    for text in ('<script src="https://cdn.example/x.js">', "<link href='//cdn.example/a.css'>",
                 "body{background:url(http://x.example/i.png)}", '@import "https://x/y.css";'):
        assert ASSET.search(text), text
    assert not ASSET.search('<script src="/static/dashboard.js">')


def test_no_served_page_or_asset_refers_to_a_remote_asset(tmp_path: Path) -> None:
    real_run(tmp_path, iterations=2)
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        app = dashboard_app(DashboardSource(store=lambda: store), allowed_hosts=["testserver"])
        with TestClient(app) as http:
            page = http.get("/").text
            served = [page]
            for path in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
                response = http.get(path)
                assert response.status_code == 200, path
                served.append(response.text)
    assert len(served) == 6  # the page, two stylesheets, three scripts
    for text in served:
        assert not ASSET.search(text)
    own = [(STATIC / name).read_text() for name in ("dashboard.js", "dashboard.css")]
    for text in own:  # our code fetches nothing but its own origin's API
        assert "http://" not in text and "https://" not in text


def test_the_wheel_ships_every_static_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "node.web" in config["packages"]
    patterns = config["package-data"]["node.web"]
    for path in STATIC.rglob("*"):
        if path.is_file():
            relative = path.relative_to(STATIC.parent).as_posix()
            assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("report")
    real_run(directory, iterations=6)
    add_hostile_claim(directory)
    with RecordStore.open(directory / "records.sqlite") as store:
        return export_report(DashboardSource(store=lambda: store))


def test_the_report_is_self_contained(report: str) -> None:
    assert not ASSET.search(report)
    assert '<script src=' not in report and '<link rel="stylesheet"' not in report
    assert "uPlot" in report and "cytoscape" in report and 'id="swarm-data"' in report


def test_the_report_keeps_a_peers_text_inert(report: str) -> None:
    data = report.split('id="swarm-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and "\u202e" not in data and "\x1b" not in data
    document = json.loads(data)
    texts = [row["description"] for key, value in document["responses"].items()
             if key.endswith("/changelog") for row in value["rows"]]
    hostile = [text for text in texts if "alert(1)" in text]
    assert hostile and hostile[0].startswith(HOSTILE[:20])  # as written, with controls escaped
    assert "\\u202e" in hostile[0]
