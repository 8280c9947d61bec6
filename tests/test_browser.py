"""The dashboard in a real browser (Debian's chromium and chromium-driver, headless, driven by
Selenium) over the data of a real small run, served by `swarm dashboard` in its own process:
no console errors on any page, the chart holds the run's points, the changelog every attempt, a
click on a DAG node shows its record, a run adding experiments shows on the page without a
reload, no request leaves 127.0.0.1, and the exported report works from a file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.store import RecordStore
from research_dag import Experiment, Problem
from tests.web_run import real_run, swarm

if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
    pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (dev extras) is missing")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT_S = 30  # the most a page may take to show something (polling is every 2 s here)


def open_browser() -> Any:
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1300,1400", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or "chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(service=service, options=options)


def start_dashboard(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """`swarm dashboard` on a free port, and its URL once it listens."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from node.cli import main; main()", "dashboard",
         "--data-dir", str(data_dir), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()  # printed once listening
    if not line.startswith("dashboard: "):
        process.kill()
        _, error = process.communicate(timeout=10)
        raise AssertionError(f"no URL from swarm dashboard: {line!r} {error}")
    return process, line.split()[-1]


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.communicate(timeout=10)  # waits, and closes the pipes


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("browser")
    real_run(directory, iterations=10)
    return directory


@pytest.fixture(scope="module")
def served(run_dir: Path) -> Iterator[str]:
    process, url = start_dashboard(run_dir)
    try:
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = open_browser()
    try:
        yield driver
    finally:
        driver.quit()


def held(data_dir: Path) -> tuple[Problem, list[Experiment]]:
    with RecordStore.open(data_dir / "records.sqlite") as store:
        problem = next(p for p in store.iter_records(kind="problem") if isinstance(p, Problem))
        experiments = [e for e in store.iter_records(kind="experiment", problem=problem.id)
                       if isinstance(e, Experiment)]
    return problem, experiments


def visit(browser: Any, url: str) -> None:
    """Open `url` and wait until the page has drawn (no "loading…" left)."""
    browser.get(url)
    WebDriverWait(browser, WAIT_S).until(lambda b: b.execute_script(
        "const app = document.getElementById('app');"
        "return !app.innerText.includes('loading…') && (!!window.swarmDashboard.page"
        " || document.querySelector('.empty, .error') !== null)"))


def errors(browser: Any) -> list[dict[str, Any]]:
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def requested(browser: Any) -> list[str]:
    """Every URL the page asked for since the last call (the performance log)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_every_page_loads_without_console_errors_or_foreign_requests(
        browser: Any, served: str, run_dir: Path) -> None:
    problem, _ = held(run_dir)
    requested(browser)
    for page in ("#/", f"#/problem/{problem.id}", f"#/dag/{problem.id}", "#/playbook",
                 "#/simulation"):
        visit(browser, served + page)
        assert errors(browser) == [], page
        assert "Cannot show this page" not in browser.find_element(By.ID, "app").text
    urls = requested(browser)
    assert any(url.endswith("/api/overview") for url in urls)
    assert all(url.startswith(served) or url.startswith("data:") for url in urls), urls


def test_the_chart_and_the_changelog_show_the_run(browser: Any, served: str, run_dir: Path
                                                  ) -> None:
    problem, experiments = held(run_dir)
    visit(browser, f"{served}#/problem/{problem.id}")
    scored = [e.outcome.score for e in experiments if e.outcome.status == "ok"]
    drawn = browser.execute_script("return window.swarmDashboard.score.data")
    assert drawn[0] == sorted(drawn[0]) and len(drawn[0]) == len(scored)
    per_node = [y for series in drawn[1:-2] for y in series if y is not None]
    assert sorted(per_node) == sorted(scored)
    best = [y for y in drawn[-1] if y is not None]
    assert best[-1] == max(scored) and best == sorted(best)  # best so far never falls
    assert browser.find_elements(By.CSS_SELECTOR, "#score-chart canvas")
    rows = browser.find_elements(By.CSS_SELECTOR, "#changelog-table tr.attempt")
    assert [row.get_attribute("data-id") for row in rows] == [e.id for e in reversed(experiments)]
    rows[0].click()  # the attempt's diff, rendered
    WebDriverWait(browser, WAIT_S).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#changelog-table tr.detail pre.diff"))
    assert errors(browser) == []


def test_clicking_a_dag_node_shows_its_record(browser: Any, served: str, run_dir: Path) -> None:
    problem, experiments = held(run_dir)
    visit(browser, f"{served}#/dag/{problem.id}")
    target = experiments[-1]
    canvas = browser.find_element(By.ID, "dag")
    # The view is drawn (no "loading…") before its graph arrives and cytoscape exists: read a
    # node's position only once it does (it was null in 1 run of ~10 under a loaded machine).
    WebDriverWait(browser, WAIT_S).until(lambda b: b.execute_script(
        "const cy = window.swarmDashboard.cy;"
        "return !!cy && cy.getElementById(arguments[0]).length > 0;", target.id))
    x, y = browser.execute_script(
        "const p = window.swarmDashboard.cy.getElementById(arguments[0]).renderedPosition();"
        "return [p.x, p.y];", target.id)
    width, height = canvas.size["width"], canvas.size["height"]
    ActionChains(browser).move_to_element_with_offset(
        canvas, int(x - width / 2), int(y - height / 2)).click().perform()
    WebDriverWait(browser, WAIT_S).until(lambda b: b.find_element(
        By.ID, "record").get_attribute("data-record") == target.id)
    text = browser.find_element(By.ID, "record").text
    assert target.mutation_kind in text and "Lineage" in text
    assert errors(browser) == []


def test_a_run_adding_experiments_shows_without_reload(browser: Any, tmp_path: Path) -> None:
    real_run(tmp_path, iterations=3)
    process, url = start_dashboard(tmp_path)
    try:
        problem, before = held(tmp_path)
        visit(browser, f"{url}#/problem/{problem.id}")
        browser.execute_script("window.notReloaded = true;")
        assert browser.execute_script(
            "return document.getElementById('score-chart').dataset.total") == str(len(before))
        more = swarm("run", str(Path(__file__).parent.parent / "examples" / "landing_copy"),
                     "--iterations", "6", "--seed", "3", "--data-dir", str(tmp_path))
        assert more.returncode == 0, more.stderr
        _, after = held(tmp_path)
        assert len(after) > len(before)
        WebDriverWait(browser, WAIT_S).until(lambda b: b.execute_script(
            "return document.getElementById('score-chart').dataset.total") == str(len(after)))
        WebDriverWait(browser, WAIT_S).until(lambda b: len(b.find_elements(
            By.CSS_SELECTOR, "#changelog-table tr.attempt")) == len(after))
        assert browser.execute_script("return window.notReloaded") is True
        assert errors(browser) == []
    finally:
        browser.get("about:blank")  # no poll of a stopped server reaches the next test's log
        stop(process)


def test_the_exported_report_works_from_a_file_with_no_network(
        browser: Any, run_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    done = swarm("report", "-o", str(report), "--data-dir", str(run_dir))
    assert done.returncode == 0, done.stderr
    problem, experiments = held(run_dir)
    requested(browser)
    for page in ("#/", f"#/problem/{problem.id}", f"#/dag/{problem.id}", "#/playbook"):
        visit(browser, report.as_uri() + page)
        browser.refresh()  # a hash change alone does not reload a file page
        visit(browser, report.as_uri() + page)
        assert errors(browser) == [], page
    visit(browser, report.as_uri() + "#/")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr")
    assert rows  # the overview's problem table (the playbook of a 10-attempt run may be empty)
    visit(browser, report.as_uri() + f"#/problem/{problem.id}")
    attempts = browser.find_elements(By.CSS_SELECTOR, "#changelog-table tr.attempt")
    assert len(attempts) == len(experiments)
    urls = requested(browser)
    assert all(url.startswith("file://") or url.startswith("data:") for url in urls), urls
