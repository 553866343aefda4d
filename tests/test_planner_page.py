"""The planner's page: served with a strict CSP, in French and English, with its vendored chart library as recorded;
and, in a real headless Chromium against a live `matcher serve` with keys, a planner's whole path: a widget key
refused, a planner key taken, a brief turned into a plan, the plan edited (moved, swapped, dropped, added, by mouse
and keyboard), filtered, turned into activations, exported as CSV, and the KPI charts drawn from what happened.

`RELAIS_SCREENSHOTS=1` (make screenshots) also writes the README's screenshots to docs/."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import urllib.request

import pytest

from api import create_app
from matcher.config import PROJECT_DIR
from matcher.keys import create_key
from matcher.store import Store
from tests.browser import assert_clean, make_browser, open_page, require_chromium, wait_for
from tests.conftest import copy_data_dir
from tests.test_crash import Server
from tests.test_fuzz import UNLIMITED
from tests.test_plans import block

pytestmark = pytest.mark.slow  # a real server and browser or several processes: `make test-slow`, CI

STATIC = PROJECT_DIR / "routes" / "static"
DOCS = PROJECT_DIR / "docs"
BRIEF = "Le détecteur de fumée connecté, testé chez des passionnés de domotique"
TV = "technical_validation"


@pytest.fixture(scope="module")
def client(homelive_dir):
    app = create_app({"DATA_DIR": str(homelive_dir), "WARM_DETECTOR": False})
    return app.test_client()


# -- the page and its files, over Flask's test client -------------------------------------------------------------


def test_the_page_is_a_shell_under_a_strict_csp(client):
    response = client.get("/planner")  # no key: the page holds no data, the API it calls asks for one
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == directives["style-src"] == directives["connect-src"] == "'self'"
    assert "unsafe" not in policy and "http" not in policy  # nothing fetched from elsewhere
    html = response.get_data(as_text=True)
    assert "<style" not in html and "style=" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html)
    sources = [s for s in re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', html) if s != "data:,"]
    assert sources and all(s.startswith("/planner/") for s in sources)
    for source in sources:  # every file the page loads is served, as a file of static/
        assert client.get(source).status_code == 200, source
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    fields = set(re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html))
    assert fields and fields <= labelled  # every field of the shell has its label (the script's own: in the browser)


@pytest.mark.parametrize(
    ("query", "accept", "lang"),
    [("", "fr-FR,fr;q=0.9", "fr"), ("", "en-GB,en;q=0.8", "en"), ("", "de-DE", "fr"), ("?lang=en", "fr", "en")],
)
def test_the_page_speaks_french_or_english(client, query, accept, lang):
    response = client.get(f"/planner{query}", headers={"Accept-Language": accept})
    assert f'<html lang="{lang}">' in response.get_data(as_text=True)


def test_a_language_it_does_not_speak_is_refused(client):
    response = client.get("/planner?lang=de")
    assert response.status_code == 400 and "lang" in response.get_json()["error"]["fields"]


def test_the_chart_library_is_vendored_as_recorded(client):
    readme = (STATIC / "vendor" / "README.md").read_text()
    recorded = dict(reversed(line.split()) for line in re.findall(r"^[0-9a-f]{64}  \S+$", readme, re.MULTILINE))
    assert recorded, "vendor/README.md lists each vendored file with its SHA-256"
    for name, digest in recorded.items():
        assert hashlib.sha256((STATIC / "vendor" / name).read_bytes()).hexdigest() == digest, name
        assert (STATIC / "vendor" / name).parent.joinpath("LICENSE.md").exists()
        version = re.search(r"-(\d+\.\d+\.\d+)/", name).group(1)
        assert f"v{version}" in (STATIC / "vendor" / name).read_text()[:200]  # the file's own banner
        response = client.get(f"/planner/vendor/{name}")
        assert response.status_code == 200 and "immutable" in response.headers["Cache-Control"]


def test_the_script_builds_no_markup_from_data():
    source = (STATIC / "planner.js").read_text()
    assert "innerHTML" not in source and "insertAdjacentHTML" not in source and "eval(" not in source
    french = source[source.index("\n    fr: {") : source.index("\n    en: {")]
    english = source[source.index("\n    en: {") : source.index("\n  };")]
    keys = re.compile(r'(?:^\s+|, )(\w+): "', re.MULTILINE)
    french, english = (set(keys.findall(block)) for block in (french, english))
    assert len(english) > 50
    assert english - french == set(), "every English text has its French one"


# -- in a real browser ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(homelive_dir, tmp_path_factory):
    """`matcher serve` with keys (not dev mode) over a copy of the Homelive data: a planner key and a widget key."""
    require_chromium()
    tmp = tmp_path_factory.mktemp("planner")
    data = copy_data_dir(homelive_dir, tmp / "data")
    store = Store(data / "relais.db")
    planner_key = create_key(store, "planner", [])[1]
    widget_key = create_key(store, "widget", ["https://www.example.com"])[1]
    store.close()
    server = Server(data, tmp / "server.log", dev=False, env={"RELAIS_RATE_LIMITS": UNLIMITED})
    server.planner_key, server.widget_key, server.downloads = planner_key, widget_key, tmp / "downloads"
    server.downloads.mkdir()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(live):
    driver = make_browser(live.downloads, size="1280,1000")
    yield driver
    driver.quit()


class Api:
    """The API as the test reads it, with the planner's key."""

    def __init__(self, live):
        self.live = live

    def __call__(self, method: str, path: str, body: dict | None = None, raw: bool = False):
        request = urllib.request.Request(
            self.live.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.live.planner_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
        return text if raw else json.loads(text)


def page_rows(driver, moment: str, category: str, role: str) -> list[str]:
    selector = f'table[data-moment="{moment}"][data-category="{category}"][data-role="{role}"] tr.person'
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map((tr) => tr.dataset.id)", selector
    )


def act(driver, action) -> str:
    """Do ``action`` (a click, a key press) and return what the page announces once done (not its "working…"),
    failing with the page's alert if it shows one."""
    driver.execute_script("document.getElementById('status').textContent = ''")
    action()

    def announced() -> str | None:
        if driver.find_element("id", "alert").is_displayed():
            pytest.fail(driver.find_element("id", "alert").text)
        text = driver.find_element("id", "status").text
        return text if text and not text.endswith("…") else None

    return wait_for(announced, timeout=60, what="the page's announcement")


def row_button(driver, moment: str, person: str, action: str):
    return driver.find_element(
        "css selector", f'table[data-moment="{moment}"] tr[data-id="{person}"] button[data-action="{action}"]'
    )


def test_a_planner_goes_from_a_brief_to_activations_an_export_and_kpi_charts(live, browser, influencers, contents):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    api = Api(live)
    open_page(browser, f"{live.url}/planner?lang=en")
    key_form = wait_for(lambda: browser.find_element("id", "key-section").is_displayed(), what="the key form")
    assert key_form and "planner or admin key is needed" in browser.find_element("id", "alert").text

    # A widget key is refused by the API the page calls, and the page says so.
    browser.find_element("id", "key").send_keys(live.widget_key, Keys.ENTER)
    wait_for(
        lambda: "A widget key cannot call GET /v1/plans" in browser.find_element("id", "alert").text, what="refusal"
    )
    assert browser.find_element("id", "key-section").is_displayed()

    browser.find_element("id", "key").send_keys(live.planner_key, Keys.ENTER)
    wait_for(lambda: not browser.find_element("id", "key-section").is_displayed(), what="the key taken")
    moments = [m["name"] for m in api("GET", "/v1/moments")["moments"]]
    boxes = wait_for(lambda: browser.find_elements("css selector", "#moments input"), what="the moments")
    assert [b.get_attribute("value") for b in boxes] == moments and all(b.is_selected() for b in boxes)

    # The brief: an empty one is refused field by field, then a real one makes the plan.
    browser.find_element("id", "make-plan").click()
    wait_for(lambda: browser.find_element("id", "brief-error").is_displayed(), what="the brief's field error")
    assert browser.find_element("id", "brief").get_attribute("aria-invalid") == "true"
    browser.find_element("id", "brief").send_keys(BRIEF)
    browser.find_element("id", "products").send_keys("homelive")
    browser.find_element("id", "moment-discovery").click()  # unchecked: desirability and technical validation
    browser.find_element("id", "budget-partner").send_keys("2")
    status = act(browser, lambda: browser.find_element("id", "make-plan").click())
    plan_id = browser.find_element("id", "saved-plans").get_attribute("value")
    plan = api("GET", f"/v1/plans/{plan_id}")
    assert [m["moment"] for m in plan["moments"]] == [m for m in moments if m != "discovery"]
    assert block(plan, TV, "partner")["budget"] == 2 and plan["request"]["brief"] == BRIEF
    shortlisted = sum(len(b["shortlist"]) for m in plan["moments"] for b in m["categories"])
    assert f"{shortlisted} people shortlisted" in status
    for m in plan["moments"]:
        for b in m["categories"]:
            for role in ("shortlist", "alternates"):
                assert page_rows(browser, m["moment"], b["category"], role) == [r["id"] for r in b[role]]

    # Edits: a shortlisted partner to the alternates, by keyboard; an alternate to the full shortlist (a swap).
    partners = block(plan, TV, "partner")
    first, second = (r["id"] for r in partners["shortlist"])
    button = row_button(browser, TV, first, "move")
    act(browser, lambda: button.send_keys(Keys.ENTER))
    assert browser.switch_to.active_element.get_attribute("data-focus") == f"move:{TV}:{first}"  # focus follows
    plan = api("GET", f"/v1/plans/{plan_id}")
    assert first in [r["id"] for r in block(plan, TV, "partner")["alternates"]]
    assert [r["id"] for r in block(plan, TV, "partner")["shortlist"]] == [second]
    alternate = next(r["id"] for r in block(plan, TV, "partner")["alternates"] if r["id"] != first)
    act(browser, lambda: row_button(browser, TV, alternate, "move").click())  # room for one: no swap
    act(browser, lambda: row_button(browser, TV, first, "move").click())  # full: the last one makes room
    plan = api("GET", f"/v1/plans/{plan_id}")
    partners = block(plan, TV, "partner")
    assert [r["id"] for r in partners["shortlist"]] == [second, first]
    assert partners["alternates"][0]["id"] == alternate and partners["alternates"][0]["edited"]
    assert page_rows(browser, TV, "partner", "shortlist") == [second, first]

    # Drop someone; add someone the plan does not hold, found by a name typed without its accents.
    act(browser, lambda: row_button(browser, TV, alternate, "drop").click())
    plan = api("GET", f"/v1/plans/{plan_id}")
    assert alternate not in json.dumps(block(plan, TV, "partner")["alternates"])
    assert {"id": alternate, "reason": "dropped by a planner"}.items() <= next(
        s for s in block(plan, TV, "partner")["skipped"] if s["id"] == alternate
    ).items()
    held = {
        r["id"] for m in plan["moments"] for b in m["categories"] for k in ("shortlist", "alternates") for r in b[k]
    }
    outsider = next(
        r
        for i, r in influencers.items()
        if r["category"] == "partner" and not r["opted_out"] and i not in held | {alternate}
    )
    search = browser.find_element("id", f"add-{TV}-partner")
    search.send_keys(outsider["name"].split()[-1].casefold(), Keys.ENTER)
    add = wait_for(
        lambda: browser.find_elements(
            "xpath", f'//ul[@id="add-{TV}-partner-results"]//button[contains(@aria-label, "{outsider["name"]}")]'
        ),
        what="the person found",
    )
    act(browser, lambda: add[-1].click())  # the last: to the alternates
    plan = api("GET", f"/v1/plans/{plan_id}")
    added = next(r for r in block(plan, TV, "partner")["alternates"] if r["id"] == outsider["id"])
    assert added["edited"] == "added by a planner"
    assert outsider["id"] in page_rows(browser, TV, "partner", "alternates")

    # Filters change what is shown, not the plan.
    Select(browser.find_element("id", "f-network")).select_by_value("youtube")
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('#plan tr.person')).filter((tr) => !tr.hidden)"
        ".map((tr) => tr.dataset.networks)"
    )
    every = browser.execute_script("return document.querySelectorAll('#plan tr.person').length")
    assert shown and all("youtube" in n.split() for n in shown) and len(shown) < every
    Select(browser.find_element("id", "f-network")).select_by_value("")
    Select(browser.find_element("id", "f-category")).select_by_value("affinity")
    visible = browser.execute_script(
        "return Array.from(document.querySelectorAll('#plan .block')).filter((b) => !b.hidden)"
        ".map((b) => b.dataset.category)"
    )
    assert set(visible) == {"affinity"}
    Select(browser.find_element("id", "f-category")).select_by_value("")

    # Activations for the edited shortlists, in one click; the page shows their status.
    status = act(browser, lambda: browser.find_element("id", "create-activations").click())
    plan = api("GET", f"/v1/plans/{plan_id}")
    wanted = sorted(r["id"] for m in plan["moments"] for b in m["categories"] for r in b["shortlist"])
    assert sorted(a["influencer_id"] for a in plan["activations"]) == wanted
    assert status.startswith(f"{len(wanted)} activation(s) created")
    proposed = browser.find_elements("css selector", 'table[data-role="shortlist"] .tag.status')
    assert len(proposed) == len(wanted) and {p.text for p in proposed} == {"proposed"}

    # The CSV, downloaded by the page, is the API's.
    for old in live.downloads.iterdir():
        old.unlink()
    act(browser, lambda: browser.find_element("id", "export-csv").click())
    path = live.downloads / f"{plan_id}.csv"
    wait_for(lambda: path.exists() and path.stat().st_size > 0, what="the download")
    exported = path.read_text(encoding="utf-8")
    assert exported == api("GET", f"/v1/plans/{plan_id}.csv", raw=True)
    lines = list(csv.DictReader(io.StringIO(exported)))
    assert {(line["id"], line["edited"]) for line in lines if line["id"] in (first, outsider["id"])} == {
        (first, "moved to the shortlist by a planner"),
        (outsider["id"], "added by a planner"),
    }

    # The campaign happens: three sent at technical validation, one published, one declined. The charts follow.
    at_tv = [a for a in plan["activations"] if a["moment"] == TV][:3]
    piece = next(iter(contents))
    for activation in at_tv:
        api("PATCH", f"/v1/activations/{activation['id']}", {"status": "sent"})
    api("PATCH", f"/v1/activations/{at_tv[0]['id']}", {"status": "published", "publications": [piece]})
    api("PATCH", f"/v1/activations/{at_tv[1]['id']}", {"status": "declined"})
    Select(browser.find_element("id", "voices")).select_by_value("partner")
    act(browser, lambda: browser.find_element("css selector", "#kpi-form button").click())
    label = next(m["label"]["en"] for m in api("GET", "/v1/moments")["moments"] if m["name"] == TV)
    drawn = chart(browser, "rates-moment")
    rates = {
        name: dict(zip(drawn["labels"], d["data"], strict=True))
        for name, d in zip(("response", "activation"), drawn["datasets"], strict=True)
    }
    assert rates["response"][label] == pytest.approx(2 / 3)  # responded (published, declined) / sent
    assert rates["activation"][label] == pytest.approx(1 / 3)  # published / sent
    others = [v for name in rates for lab, v in rates[name].items() if lab != label]
    assert all(v is None for v in others)  # the other moment's activations are only proposed: no rate
    formats = chart(browser, "formats")
    assert formats["labels"] == [contents[piece]["format"]] and formats["datasets"][0]["data"] == [1]
    share = chart(browser, "share-of-voice")
    assert share["labels"] and share["datasets"]  # the partners' voice among the pieces, quarter by quarter
    assert browser.find_element("css selector", "#chart-rates-moment canvas").get_attribute("role") == "img"
    if os.environ.get("RELAIS_SCREENSHOTS"):
        screenshot(browser, "#plan-section", DOCS / "planner-plan.png")
        screenshot(browser, "#kpi-section", DOCS / "planner-kpis.png")

    # In French, the same plan and charts.
    browser.find_element("css selector", '[data-lang="fr"]').click()
    wait_for(lambda: browser.find_element("id", "create-activations").text == "Créer les activations", what="French")
    assert browser.execute_script("return document.documentElement.lang") == "fr"
    label_fr = next(m["label"]["fr"] for m in api("GET", "/v1/moments")["moments"] if m["name"] == TV)
    assert label_fr in chart(browser, "rates-moment")["labels"]
    assert page_rows(browser, TV, "partner", "shortlist") == [second, first]
    assert_accessible(browser)
    assert_clean(browser)


def chart(driver, name: str) -> dict:
    """The labels and data Chart.js drew in a chart of the page (it must have drawn one)."""
    return wait_for(
        lambda: driver.execute_script(
            """const canvas = document.querySelector(`#chart-${arguments[0]} canvas`);
            const drawn = canvas && window.Chart.getChart(canvas);
            const datasets = drawn && drawn.data.datasets.map((d) => ({label: d.label, data: d.data}));
            return drawn && {labels: drawn.data.labels, datasets};""",
            name,
        ),
        what=f"the {name} chart",
    )


def assert_accessible(driver) -> None:
    """Every field labelled, every button named, and text contrast of 4.5:1 or more (WCAG AA) where it is set."""
    problems = driver.execute_script(
        """
        const problems = [];
        for (const field of document.querySelectorAll('input, select, textarea')) {
          if (field.type === 'hidden') continue;
          const named = (field.id && document.querySelector(`label[for="${field.id}"]`))
            || field.getAttribute('aria-label');
          if (!named) problems.push('unlabelled ' + (field.id || field.outerHTML.slice(0, 60)));
        }
        for (const button of document.querySelectorAll('button')) {
          if (!(button.getAttribute('aria-label') || button.textContent.trim())) problems.push('unnamed button');
        }
        const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
        const lum = (c) => {
          const [r, g, b] = rgb(c).map((v) => v / 255)
            .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
          return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        };
        const background = (node) => {
          for (; node; node = node.parentElement) {
            const c = getComputedStyle(node).backgroundColor;
            if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c;
          }
          return 'rgb(255, 255, 255)';
        };
        const texts = 'h1, h2, h3, h4, label, button, th, td, p, a, summary, caption, span';
        for (const node of document.querySelectorAll(texts)) {
          if (!node.offsetParent || !node.textContent.trim()) continue;
          const style = getComputedStyle(node);
          const [a, b] = [lum(style.color), lum(background(node))];
          const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
          const what = `${node.tagName} ${node.textContent.trim().slice(0, 30)}`;
          if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)} ${what}`);
        }
        return problems;
        """
    )
    assert problems == []


def screenshot(driver, selector: str, path) -> None:
    """A PNG of one part of the page, as the README shows it."""
    element = driver.find_element("css selector", selector)
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)
    shot = element.screenshot_as_png
    path.write_bytes(shot)
    assert path.stat().st_size > 10_000
