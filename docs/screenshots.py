"""Takes the README's screenshots of the dashboard from a real run: `swarm simulate --nodes 4
--problem examples/landing_copy --dashboard` in a subprocess, its pages in headless chromium
(Debian's, via Selenium), one PNG per page in docs/, then Ctrl-C to the simulation.

    .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SIZE = (1100, 860)


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                     f"--window-size={SIZE[0]},{SIZE[1]}", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or "chromium"
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(service=service, options=options)


def shot(driver: webdriver.Chrome, url: str, name: str, scroll: int = 0) -> None:
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: "loading…" not in d.find_element(By.ID, "app").text)
    driver.execute_script(f"window.scrollTo(0, {scroll})")
    driver.save_screenshot(str(DOCS / f"dashboard-{name}.png"))
    print(f"docs/dashboard-{name}.png")


def main() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "from node.cli import main; main()", "simulate", "--nodes", "4",
         "--problem", str(ROOT / "examples" / "landing_copy"), "--rounds", "40",
         "--faults", "liars=0.25", "--dashboard", "--dashboard-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None and process.stderr is not None
    url = process.stdout.readline().split()[-1]
    for line in process.stderr:  # the rounds, then the dashboard lingering
        if "dashboard stays up" in line:
            break
    driver = browser()
    try:
        driver.get(url)
        problem = driver.execute_script(
            "return fetch('/api/overview').then(r => r.json()).then(d => d.problems[0].id)")
        shot(driver, url + "#/", "overview")
        shot(driver, f"{url}#/problem/{problem}", "problem")
        shot(driver, f"{url}#/problem/{problem}", "changelog", scroll=720)
        driver.get(f"{url}#/dag/{problem}")
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(
            "return !!window.swarmDashboard.cy"))
        best = driver.execute_script(
            "const n = window.swarmDashboard.cy.nodes().filter(n => n.data('color') === '#d4a017');"
            "const p = (n.length ? n : window.swarmDashboard.cy.nodes()).last().renderedPosition();"
            "return [p.x, p.y];")
        canvas = driver.find_element(By.ID, "dag")
        ActionChains(driver).move_to_element_with_offset(
            canvas, int(best[0] - canvas.size["width"] / 2),
            int(best[1] - canvas.size["height"] / 2)).click().perform()
        WebDriverWait(driver, 30).until(lambda d: d.find_element(
            By.ID, "record").get_attribute("data-record"))
        driver.save_screenshot(str(DOCS / "dashboard-dag.png"))
        print("docs/dashboard-dag.png")
        shot(driver, url + "#/simulation", "simulation")
    finally:
        driver.quit()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


if __name__ == "__main__":
    main()
