"""A real browser for the end-to-end tests: Debian's headless Chromium driven by Selenium, with a probe that records
what a page's Content-Security-Policy refuses and what throws."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

# Added to every page before its own scripts: what the page's CSP refuses, what the page warns, what throws.
PROBE = """(() => {
  const probe = window.__probe = {violations: [], warnings: [], errors: []};
  document.addEventListener('securitypolicyviolation',
    (e) => probe.violations.push(e.violatedDirective + ' ' + e.blockedURI), true);
  const warn = console.warn.bind(console);
  console.warn = (...args) => { probe.warnings.push(args.join(' ')); warn(...args); };
  addEventListener('error', (e) => probe.errors.push(String(e.message)));
  addEventListener('unhandledrejection', (e) => probe.errors.push(String(e.reason)));
})();"""


def require_chromium() -> None:
    """Debian's Chromium and its driver, with Selenium: skipped where they are missing, but not in CI."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -r requirements.txt)")
    if missing:
        if os.environ.get("RELAIS_CI"):
            pytest.fail(f"{', '.join(missing)} missing, and .ci/run should have installed them")
        pytest.skip(f"{', '.join(missing)} missing (.ci/run installs them: apt-get install chromium chromium-driver)")


def make_browser(downloads: Path | None = None, size: str = "1280,900") -> Any:
    """Headless Chromium, hermetic (only the local server resolves), saving downloads to ``downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={size}",
        "--no-first-run",
        # hermetic: cards link to Instagram and YouTube; only the local server resolves
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    if downloads is not None:
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
    if downloads is not None:
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.home = driver.current_window_handle
    return driver


def open_page(driver: Any, url: str) -> None:
    """Close the tabs a page opened (target=_blank links), then open ``url`` with a fresh browser log."""
    for handle in set(driver.window_handles) - {driver.home}:
        driver.switch_to.window(handle)
        driver.close()
    driver.switch_to.window(driver.home)
    driver.get_log("browser")  # only this page's entries from now on
    driver.get(url)


def wait_for(predicate: Any, timeout: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.25)


def assert_clean(driver: Any) -> None:
    """No CSP violation, no uncaught error; nothing the CSP refused in the browser's own log either."""
    probe = driver.execute_script("return window.__probe")
    assert probe["violations"] == [] and probe["errors"] == [], probe
    refused = [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []
