"""The journey view in a real browser: headless Chromium driven by Selenium.

Opens the standalone file, steps three times (twice with the Step button, once with the
keyboard), checks that the selected event and the layer panels follow, and keeps a
screenshot in ``build/artifacts/``. Skips, saying why, where Chromium, chromedriver or
Selenium are missing (CI installs Debian's chromium and chromium-driver).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest
from journey.conftest import ROOT, cache_outcomes

from osilab.journey import compare, journey, request_ids, save_html

ARTIFACTS = ROOT / "build" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
OPTIONS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1680,1900",
)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed in this venv"
    )
    from selenium.webdriver.chrome.service import Service

    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian package chromium)")
    if not Path(CHROMEDRIVER).exists():
        pytest.skip(
            f"chromedriver is not installed at {CHROMEDRIVER} (Debian package chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    for option in OPTIONS:
        options.add_argument(option)
    profile = tempfile.mkdtemp(prefix="osilab-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _state(driver):
    """What the page shows now: the selected event, the panels' titles and their layer rows."""
    return driver.execute_script("""
        const root = document.querySelector('[data-osj]');
        const rows = sel => [...root.querySelectorAll(sel + ' .osj-row.osj-on')].map(r => r.dataset.osi);
        return {
          current: root.getAttribute('data-current'),
          selected: [...root.querySelectorAll('.osj-ev[aria-current=step]')].map(b => b.dataset.i),
          inTitle: root.querySelector('.osj-in-title').textContent,
          outTitle: root.querySelector('.osj-out-title').textContent,
          inRows: rows('.osj-in'), outRows: rows('.osj-out'),
          stop: [...root.querySelectorAll('.osj-in .osj-row.osj-stop')].map(r => r.dataset.osi),
          bytes: root.querySelectorAll('.osj-in .osj-bytes pre span').length,
          now: root.querySelector('.osj-now').textContent,
        };""")


def _suffix(path: Path) -> str:
    """Screenshots of the lab's capture keep the plain name; the synthetic ones say so."""
    return "" if ROOT / "captures" in path.parents else "-synthetic"


def _api_request(path, outcome):
    outcomes = cache_outcomes(path)
    return next(rid for rid in request_ids(path) if outcomes.get(rid) == outcome)


def test_step_through_the_journey(browser, architecture, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    trip = journey(architecture["alb"], request=_api_request(architecture["alb"], "miss"))
    page = save_html(trip, tmp_path / "journey.html")
    browser.get(page.as_uri())
    events = trip.events
    seen = [_state(browser)]
    assert seen[0]["current"] == "0" and seen[0]["selected"] == ["0"]
    assert (
        seen[0]["inRows"] == [] and "read nothing" in seen[0]["inTitle"]
    )  # the client creates the request
    step = browser.find_element(By.CSS_SELECTOR, '[data-act="step"]')
    step.click()
    seen.append(_state(browser))
    step.click()
    seen.append(_state(browser))
    browser.find_element(By.CSS_SELECTOR, "[data-osj]").send_keys(
        Keys.ARROW_RIGHT
    )  # the keyboard steps too
    seen.append(_state(browser))
    for number, state in enumerate(seen):
        event = events[number]
        assert state["current"] == str(number) and state["selected"] == [str(number)]
        assert event.device.name in state["inTitle"] and event.summary == state["now"]
        assert state["inRows"] == [
            str(s.osi) for s in sorted(event.in_layers, key=lambda s: -s.osi)
        ]
        assert state["outRows"] == [
            str(s.osi) for s in sorted(event.out_layers, key=lambda s: -s.osi)
        ]
    # Event 1 is the ALB: it read up to layer 7 and stopped there, with the frame's bytes shown.
    assert seen[1]["stop"] == ["7"] and "stopped at layer 7" in seen[1]["inTitle"]
    assert seen[1]["bytes"] > 60
    assert len({s["inTitle"] for s in seen}) == 4  # the panels changed at every step
    # Back with the button, and space on the section steps forward again.
    browser.find_element(By.CSS_SELECTOR, '[data-act="back"]').click()
    assert _state(browser)["current"] == "2"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.find_element(By.CSS_SELECTOR, '[data-act="balancer"]').click()
    assert _state(browser)["current"] == str(trip.balancer_event().index)
    browser.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.8)  # let the PDU finish its move (550 ms)
    shot = ARTIFACTS / f"journey{_suffix(architecture['alb'])}.png"
    browser.save_screenshot(str(shot))
    print(f"\nmeasured: screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    severe = [entry for entry in browser.get_log("browser") if entry.get("level") == "SEVERE"]
    assert severe == []


def test_compare_in_the_browser(browser, architecture, tmp_path):
    alb = journey(architecture["alb"], request=_api_request(architecture["alb"], "hit"))
    nlb = journey(architecture["nlb"], request=_api_request(architecture["nlb"], "hit"))
    page = tmp_path / "compare.html"
    page.write_text(compare(alb, nlb), encoding="utf-8")
    browser.get(page.as_uri())
    stops = browser.execute_script("""
        return [...document.querySelectorAll('[data-osj]')].map(root =>
          [...root.querySelectorAll('.osj-in .osj-row.osj-stop')].map(r => r.dataset.osi).join(''));""")
    assert stops == ["7", "4"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    time.sleep(0.3)
    shot = ARTIFACTS / f"journey-compare{_suffix(architecture['alb'])}.png"
    browser.save_screenshot(str(shot))
    print(f"\nmeasured: screenshot: {shot}")
    assert [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"] == []
