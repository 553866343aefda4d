"""The widget: /widget.js within its size budget and cacheable; the demo page's CSP and parameters; and the demo in
a real headless Chromium against a live `matcher serve` (cards of the expected kinds for each moment, no CSP
violation, impressions and clicks through the KPI route, a key from a wrong origin, the API down or silent, the
script included twice)."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import socket
import sqlite3
import time
import urllib.request

import pytest

from api import create_app
from matcher.config import PROJECT_DIR
from matcher.keys import create_key
from matcher.store import Store
from tests.browser import assert_clean, make_browser, open_page, require_chromium, wait_for
from tests.conftest import FIXTURES, copy_data_dir, read_jsonl
from tests.test_crash import Server
from tests.test_fuzz import UNLIMITED
from tests.test_server import free_port

pytestmark = pytest.mark.slow  # a real server and browser or several processes: `make test-slow`, CI

SIZE_BUDGET = 10 * 1024  # gzipped
SCRIPT = PROJECT_DIR / "routes" / "static" / "widget.js"
SITE = "https://www.example.com"  # the origin the wrong-origin key is made for
# The moments whose widgets are told apart by their formats: each against the other.
CONTRAST = {"technical_validation": "desirability", "desirability": "technical_validation"}


@pytest.fixture(scope="module")
def apps(homelive_dir):
    made = {
        dev: create_app({"DATA_DIR": str(homelive_dir), "WARM_DETECTOR": False, "DEV_MODE": dev})
        for dev in (True, False)
    }
    return {dev: app.test_client() for dev, app in made.items()}


# -- the script and the demo page, over Flask's test client ------------------------------------------------------


def test_script_is_within_its_size_budget_and_cacheable(apps):
    response = apps[False].get("/widget.js")  # public: no key, and not only in dev mode
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    size = len(gzip.compress(response.data, compresslevel=9))
    assert size <= SIZE_BUDGET, f"widget.js is {size} bytes gzipped; the budget is {SIZE_BUDGET}"
    assert re.fullmatch(r"public, max-age=\d+", response.headers["Cache-Control"])
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    etag = response.headers["ETag"]
    again = apps[False].get("/widget.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag


def test_script_builds_no_markup_from_data_and_needs_no_inline_style():
    source = SCRIPT.read_text()
    assert "innerHTML" not in source and "insertAdjacentHTML" not in source  # records' text is text, never HTML
    assert ".style." not in source and "style=" not in source  # nothing a strict style-src refuses
    assert "adoptedStyleSheets" in source and 'customElements.get("relais-moment")' in source


@pytest.mark.parametrize("path", ["/widget/demo", "/widget/demo.css"])
def test_demo_is_served_in_dev_mode_only(apps, path):
    response = apps[False].get(path)
    assert response.status_code == 404
    assert response.get_json()["error"]["message"].startswith("The widget demo is served in dev mode only")
    assert apps[True].get(path).status_code == 200


def test_demo_page_has_a_strict_csp_and_reads_without_javascript(apps, homelive_dir):
    response = apps[True].get("/widget/demo")
    assert response.status_code == 200 and response.mimetype == "text/html"
    csp = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == csp["style-src"] == csp["connect-src"] == "'self'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    html = response.data.decode()
    assert "style=" not in html and "<style" not in html  # the page's CSS is a file
    assert re.findall(r"<script[^>]*>", html) == ['<script async src="/widget.js">']  # and nothing inline runs
    moments = re.findall(r'<relais-moment moment="([a-z_]+)"', html)
    assert sorted(moments) == sorted(apps[True].application.extensions["relais"].moments)
    assert "<noscript>" in html and "Compatibilité et installation" in html and "Livebox 7" in html


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"key": 'rk_x"><script>alert(1)</script>'}, "key"),
        ({"key": "sk_live_123"}, "key"),
        ({"api": "javascript:alert(1)"}, "api"),
        ({"api": "http://evil.example;script-src *"}, "api"),  # would add a directive to the page's CSP
        ({"api": "http://127.0.0.1:9/path"}, "api"),
    ],
)
def test_demo_refuses_parameters_it_cannot_use_safely(apps, query, field):
    response = apps[True].get("/widget/demo", query_string=query)
    assert response.status_code == 400
    assert list(response.get_json()["error"]["fields"]) == [field]


def test_demo_passes_a_key_and_an_api_to_its_widgets(apps):
    response = apps[True].get("/widget/demo?key=rk_abc123_s3cr-t_&api=http://127.0.0.1:9/&utm_source=mail")
    assert response.status_code == 200
    html = response.data.decode()
    assert html.count('key="rk_abc123_s3cr-t_" api="http://127.0.0.1:9"') == 3
    assert "connect-src 'self' http://127.0.0.1:9;" in response.headers["Content-Security-Policy"]


# -- in a real browser: headless Chromium against a live server --------------------------------------------------

WIDGETS = """
return Array.from(document.querySelectorAll('relais-moment')).map((w) => ({
  moment: w.getAttribute('moment'), query: w.getAttribute('query'), state: w.getAttribute('data-state'),
  items: w.shadowRoot ? Array.from(w.shadowRoot.querySelectorAll('li')).map((li) => li.dataset.item) : [],
  titles: w.shadowRoot ? Array.from(w.shadowRoot.querySelectorAll('.title')).map((t) => t.textContent) : [],
  others: w.shadowRoot ? Array.from(w.shadowRoot.children).filter((c) => c.localName !== 'slot').length : 0,
}));
"""


@pytest.fixture(scope="module")
def chromium():
    require_chromium()


@pytest.fixture(scope="module")
def live(chromium, homelive_dir, tmp_path_factory):
    """`matcher serve --dev` over a copy of the Homelive data, with a widget key made for another site."""
    tmp = tmp_path_factory.mktemp("widget")
    data = copy_data_dir(homelive_dir, tmp / "data")
    server = Server(data, tmp / "server.log", env={"RELAIS_RATE_LIMITS": UNLIMITED})  # the test polls the KPIs
    store = Store(data / "relais.db")
    server.data = data
    server.foreign_key = create_key(store, "widget", [SITE])[1]
    server.local = f"http://localhost:{server.port}"  # another origin than 127.0.0.1, on the same server
    server.local_record, server.local_key = create_key(store, "widget", [server.local])
    store.close()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(chromium):
    driver = make_browser()
    yield driver
    driver.quit()


def widgets(driver) -> dict[str, dict]:
    return {w["moment"] or w["query"]: w for w in driver.execute_script(WIDGETS)}


def show(driver, moment: str) -> None:
    """Scroll a widget to the middle of the viewport, as a reader would."""
    driver.execute_script(
        "document.querySelector(`relais-moment[moment='${arguments[0]}']`).scrollIntoView({block: 'center'})", moment
    )


def settled(driver, moment: str, state: str = "ready") -> dict:
    show(driver, moment)
    return wait_for(lambda: widgets(driver)[moment]["state"] == state and widgets(driver)[moment], what=moment)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def settled_figures(live, moment: str) -> tuple[int, int]:
    """The figures once the events a previous page sent as it was left have landed."""
    last = customer_figures(live, moment)
    while True:
        time.sleep(1.0)
        now = customer_figures(live, moment)
        if now == last:
            return now
        last = now


def customer_figures(live, moment: str) -> tuple[int, int]:
    """(impressions, clicks) of a moment, as the brand team's KPI route reports them."""
    groups = get_json(f"{live.url}/v1/kpis?group_by=moment")["customers"]["groups"]
    for group in groups:
        if group["group"].get("moment") == moment:
            return group["impressions"]["value"], group["clicks"]["value"]
    return 0, 0


def stored_events(live, **where: str) -> list[dict]:
    clause = " AND ".join(f"{k} = ?" for k in where) or "1"
    with contextlib.closing(sqlite3.connect(live.data / "relais.db", timeout=30)) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(f"SELECT * FROM events WHERE {clause}", list(where.values()))]


def served_ids(live) -> set[str]:
    with contextlib.closing(sqlite3.connect(live.data / "relais.db", timeout=30)) as db:
        return {r for (r,) in db.execute("SELECT request_id FROM served")}


def test_demo_shows_each_moment_its_kinds_of_content(live, browser):
    open_page(browser, f"{live.url}/widget/demo")
    first = settled(browser, "discovery")
    assert 1 <= len(first["items"]) <= 3 and all(first["titles"])
    later = widgets(browser)["technical_validation"]
    assert later["state"] is None and later["items"] == []  # far from the viewport: not fetched yet
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('/v1/match'))"
    )
    assert not any("technical_validation" in url for url in fetched), fetched

    formats = {c["id"]: c["format"] for c in read_jsonl(FIXTURES / "content.jsonl")}
    weights = {m["name"]: m["formats"] for m in get_json(f"{live.url}/v1/moments")["moments"]}  # the moments file's
    for moment, other in CONTRAST.items():
        shown = settled(browser, moment)
        assert 1 <= len(shown["items"]) <= 3
        kinds = [formats[item] for item in shown["items"]]
        leaning = [f for f in kinds if weights[moment][f] > weights[other][f]]  # formats this moment favours
        assert len(leaning) * 2 > len(kinds), (moment, kinds)
        mine = sum(weights[moment][f] for f in kinds)
        assert mine > sum(weights[other][f] for f in kinds), (moment, kinds)
    assert_clean(browser)
    if os.environ.get("RELAIS_SCREENSHOTS"):  # make screenshots: the README's picture of the demo
        section = browser.execute_script(
            "return document.querySelector(\"relais-moment[moment='desirability']\").closest('section')"
        )
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", section)
        (PROJECT_DIR / "docs" / "widget-demo.png").write_bytes(section.screenshot_as_png)


def test_a_card_seen_sends_an_impression_and_a_click_is_recorded(live, browser):
    open_page(browser, "about:blank")  # the previous page's events are sent as it is left
    moment, other = "technical_validation", "desirability"
    before = {m: settled_figures(live, m) for m in (moment, other)}
    open_page(browser, f"{live.url}/widget/demo")
    started = time.monotonic()
    shown = settled(browser, moment)
    wait_for(lambda: customer_figures(live, moment)[0] >= before[moment][0] + len(shown["items"]), what="impressions")
    print(f"impressions stored {time.monotonic() - started:.1f} s after the widget was scrolled into view")
    events = [e for e in stored_events(live, type="impression", moment=moment) if e["item_id"] in shown["items"]]
    assert {e["rank"] for e in events} >= set(range(1, len(shown["items"]) + 1))
    # each names the request that showed it (its X-Request-ID), which the loop writes down as served
    requests = {e["request_id"] for e in events}
    assert None not in requests
    wait_for(lambda: requests <= served_ids(live), what="the served log")

    link = "return document.querySelector(`relais-moment[moment='${arguments[0]}']`).shadowRoot.querySelector('a')"
    card = browser.execute_script(link, moment)
    assert card.get_attribute("rel") == "noopener" and card.get_attribute("target") == "_blank"
    card.click()  # opens the piece in a new tab; this page stays
    wait_for(lambda: customer_figures(live, moment)[1] == before[moment][1] + 1, what="the click")
    click = stored_events(live, type="click", moment=moment)[-1]
    assert click["item_id"] == shown["items"][0] and click["rank"] == 1 and click["request_id"] in requests

    # A site whose links open in the same tab: the click leaves the page, and is recorded all the same.
    browser.switch_to.window(browser.home)
    settled(browser, other)
    assert_clean(browser)
    card = browser.execute_script(link, other)
    browser.execute_script("arguments[0].target = '_self'", card)
    card.click()
    wait_for(lambda: "/widget/demo" not in browser.current_url, what="the navigation")
    wait_for(lambda: customer_figures(live, other)[1] == before[other][1] + 1, what="the click that left the page")


def test_a_key_made_for_this_origin_works_across_origins(live, browser):
    # The page on http://localhost:port, the API on http://127.0.0.1:port: as a brand's site and Relais.
    open_page(browser, f"{live.local}/widget/demo?key={live.local_key}&api={live.url}")
    shown = settled(browser, "discovery")
    assert shown["items"]
    assert_clean(browser)
    time.sleep(1.5)  # seen for a second: impressions, queued
    open_page(browser, "about:blank")  # leaving the page sends what is still queued
    events = wait_for(lambda: stored_events(live, key_id=live.local_record.key_id), what="the key's events")
    assert {e["origin"] for e in events} == {live.local}
    assert {e["item_id"] for e in events} <= set(shown["items"]) and all(e["request_id"] for e in events)


@pytest.mark.parametrize("where", ["same origin", "another origin"])
def test_a_key_from_a_wrong_origin_shows_nothing_and_says_why(live, browser, where):
    page = live.url if where == "same origin" else live.local
    open_page(browser, f"{page}/widget/demo?key={live.foreign_key}&api={live.url}")
    for moment in ("discovery", "desirability", "technical_validation"):
        quiet = settled(browser, moment, state="failed")
        assert quiet["items"] == [] and quiet["others"] == 0  # no card, no error box: only the (empty) fallback
    body = browser.execute_script("return document.body.innerText")
    assert "Relais widget" not in body and "403" not in body and "Compatibilité et installation" in body
    warnings = browser.execute_script("return window.__probe.warnings")
    assert warnings and all("origin" in w for w in warnings), warnings
    if where == "same origin":  # the 403 can be read: the warning says exactly why
        assert any("not allowed on this origin" in w for w in warnings), warnings
    assert_clean(browser)


@contextlib.contextmanager
def silent_port():
    """A port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


@pytest.mark.parametrize(("down", "warning"), [("closed", "could not reach"), ("silent", "within 3 s")])
def test_the_page_stays_whole_when_the_api_is_down(live, browser, down, warning):
    with silent_port() if down == "silent" else contextlib.nullcontext(free_port()) as port:
        started = time.monotonic()
        open_page(browser, f"{live.url}/widget/demo?api=http://127.0.0.1:{port}")
        loaded = time.monotonic() - started
        quiet = settled(browser, "discovery", state="failed")
        assert quiet["items"] == [] and quiet["others"] == 0
    assert loaded < 5  # the page did not wait for the widget
    assert browser.execute_script("return document.readyState") == "complete"
    body = browser.execute_script("return document.body.innerText")
    assert "Homelive, la maison connectée simplement" in body and "Relais widget" not in body
    assert "On en parle" not in body  # the section's heading goes with the cards
    warnings = browser.execute_script("return window.__probe.warnings")
    assert any(warning in w for w in warnings), warnings
    assert_clean(browser)


def test_the_script_included_twice_defines_one_element_and_fetches_once_per_request(live, browser):
    open_page(browser, f"{live.url}/widget/demo")
    settled(browser, "discovery")
    browser.execute_script("window.__defined = customElements.get('relais-moment')")
    loaded = browser.execute_async_script(
        "const done = arguments[0], s = document.createElement('script');"
        "s.src = '/widget.js'; s.onload = () => done(true); s.onerror = () => done(false); document.head.append(s);"
    )
    assert loaded and browser.execute_script("return customElements.get('relais-moment') === window.__defined")
    # Two more widgets asking what the page's first one asked, and one with a customer's words (POST /v1/match).
    browser.execute_script(
        "for (const attrs of [arguments[0], arguments[0], arguments[1]]) {"
        "  const w = document.createElement('relais-moment');"
        "  for (const [k, v] of Object.entries(attrs)) w.setAttribute(k, v);"
        "  document.querySelector('main').prepend(w);"
        "} window.scrollTo(0, 0);",
        {"moment": "discovery", "products": "homelive", "language": "fr", "limit": "3"},
        {"query": "est-ce que ça marche avec ma livebox ?", "products": "homelive", "language": "fr"},
    )
    wait_for(
        lambda: [w["state"] for w in browser.execute_script(WIDGETS)[:3]] == ["ready"] * 3, what="the added widgets"
    )
    added = browser.execute_script(WIDGETS)
    assert added[1]["items"] == added[2]["items"] == widgets(browser)["discovery"]["items"]
    assert added[0]["items"]  # the customer's words, matched
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('/v1/match'))"
    )
    assert sum("moment=discovery" in url for url in fetched) == 1, fetched
    assert_clean(browser)
