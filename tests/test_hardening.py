"""What a hostile tester broke (issue 14), each case failing before its fix: malformed Origin headers, deeply
nested JSON, CSV cells beyond the csv module's field limit, ids with control characters, unbounded tag lists.
Every answer is a clear 4xx (or a rejected line in an import), never a 500, and nothing is stored by a refusal."""

from __future__ import annotations

import json

import pytest

from api import create_app
from matcher.keys import create_key
from matcher.loader import MAX_DEPTH

SITE = "https://www.example.com"
ZOE = {
    "id": "inf-zoe-hardening",
    "name": "Zoé Capteurs",
    "category": "affinity",
    "language": "fr",
    "platforms": [{"network": "youtube", "handle": "@zoe", "followers": 5400}],
}
PIECE = {
    "id": "cnt-zoe-hardening",
    "influencer_id": "inf-zoe-hardening",
    "format": "review",
    "language": "fr",
    "title": "Le détecteur démonté",
    "published_at": "2026-11-20T10:00:00+01:00",
}
BAD_ORIGINS = ["null", "/path", "https://www.example.com:99999", "https://[::1", f"{SITE} https://b.example", "x" * 300]


@pytest.fixture(scope="module")
def app(homelive_dir, tmp_path_factory):
    from tests.conftest import copy_data_dir

    data = copy_data_dir(homelive_dir, tmp_path_factory.mktemp("hardening") / "data")
    made = create_app({"DATA_DIR": str(data), "WARM_DETECTOR": False})
    store = made.extensions["relais"].store
    made.keys = {role: create_key(store, role, [SITE] if role == "widget" else [])[1] for role in ("widget", "admin")}
    return made


def call(app, method, path, body=None, role="admin", headers=None, content_type="application/json"):
    data = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    sent = {"Authorization": f"Bearer {app.keys[role]}", **(headers or {})}
    return app.test_client().open(path, method=method, data=data, headers=sent, content_type=content_type)


def refused(response, status=400):
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    error = response.get_json()["error"]
    assert error["status"] == status and error["message"]
    return error


@pytest.mark.parametrize("origin", BAD_ORIGINS)
def test_an_unusable_origin_is_ignored_for_planner_keys_and_refused_for_widget_keys(app, origin):
    planner = call(app, "GET", "/v1/moments", headers={"Origin": origin})
    assert planner.status_code == 200 and "Access-Control-Allow-Origin" not in planner.headers
    match = {"moment": "desirability", "limit": 2}
    widget = call(app, "POST", "/v1/match", match, role="widget", headers={"Origin": origin})
    assert "not allowed from" in refused(widget, 403)["message"]
    good = call(app, "POST", "/v1/match", match, role="widget", headers={"Origin": SITE})
    assert good.status_code == 200  # the same key from its own site


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/match"), ("POST", "/v1/moments/detect"), ("PUT", "/v1/influencers/inf-deep"), ("POST", "/v1/plans")],
)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 600, 5000])
def test_deeply_nested_json_is_a_400(app, method, path, depth):
    error = refused(call(app, method, path, nested(depth)))
    assert error["code"] == "malformed_json" and "levels deep" in error["message"]
    assert call(app, "GET", "/v1/influencers/inf-deep").status_code == 404  # nothing stored


def test_json_as_deep_as_allowed_is_read(app):
    # A body nested exactly MAX_DEPTH levels parses, and is then judged on its fields (not as malformed).
    error = refused(call(app, "POST", "/v1/match", nested(MAX_DEPTH)))
    assert error["code"] == "invalid_request" and "a" in error["fields"]


def test_an_import_rejects_a_deep_line_and_keeps_the_rest(app):
    lines = [json.dumps({**ZOE, "id": "inf-zoe-deep-1"}), nested(1000), json.dumps({**ZOE, "id": "inf-zoe-deep-2"})]
    response = call(app, "POST", "/v1/import?kind=influencers", "\n".join(lines) + "\n", content_type="text/plain")
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert report["inserted"] == 2 and [r["line"] for r in report["rejected"]] == [2]
    assert "levels deep" in report["rejected"][0]["reason"]


def test_an_import_whose_kind_is_told_from_a_deep_first_line_is_a_400(app):
    """bench/hostile.py: without ?kind=, the first line is read to tell the kind; nested 1,000 deep it crashed the
    decoder (500). It is skipped like any unreadable line, and the next one tells the kind."""
    only_deep = call(app, "POST", "/v1/import", nested(1000) + "\n", content_type="text/plain")
    assert refused(only_deep)["fields"] == {"kind": ["Required: cannot be told from the data."]}
    lines = [nested(1000), json.dumps({**ZOE, "id": "inf-zoe-deep-3"})]
    response = call(app, "POST", "/v1/import", "\n".join(lines) + "\n", content_type="text/plain")
    assert response.status_code == 200 and response.get_json()["inserted"] == 1, response.get_json()


def test_a_csv_cell_beyond_the_field_limit_rejects_its_line_only(app):
    huge = "x" * 200_000  # the csv module's limit is 131,072 characters
    rows = (
        "id,name,category,language,network,handle,followers\n"
        "inf-csv-ok-1,Ana,affinity,fr,instagram,@ana,1200\n"
        f'inf-csv-huge,"{huge}",affinity,fr,instagram,@huge,1300\n'
        "inf-csv-ok-2,Bea,affinity,fr,instagram,@bea,1400\n"
    )
    response = call(app, "POST", "/v1/import?kind=influencers", rows, content_type="text/csv")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    report = response.get_json()
    assert report["inserted"] == 2 and [r["line"] for r in report["rejected"]] == [3]
    assert "not readable as CSV" in report["rejected"][0]["reason"]
    for person, status in (("inf-csv-ok-1", 200), ("inf-csv-ok-2", 200), ("inf-csv-huge", 404)):
        assert call(app, "GET", f"/v1/influencers/{person}").status_code == status


@pytest.mark.parametrize("bad", ["inf-\x00nul", "inf-line\nbreak", "inf-\x1bescape", "inf-\x7fdel"])
def test_ids_with_control_characters_are_refused(app, bad):
    error = refused(call(app, "POST", "/v1/influencers", {**ZOE, "id": bad}))
    assert "control characters" in json.dumps(error["fields"])
    error = refused(call(app, "POST", "/v1/content", {**PIECE, "id": "cnt-ok-id", "influencer_id": bad}))
    assert "influencer_id" in error["fields"]


@pytest.mark.parametrize("path", ["/v1/content/%FF%FE", "/v1/content/%ED%A0%80", "/v1/content/caf%E9"])
def test_an_id_from_invalid_utf8_in_the_url_is_refused(app, path):
    """bench/hostile.py: invalid UTF-8 in a URL decodes to U+FFFD, so several URLs named one stored record."""
    body = {k: v for k, v in PIECE.items() if k != "id"}
    error = refused(call(app, "PUT", path, {**body, "influencer_id": None}))
    assert "U+FFFD" in json.dumps(error["fields"])
    assert call(app, "GET", "/v1/content/%EF%BF%BD%EF%BF%BD").status_code == 404  # nothing stored under it


@pytest.mark.parametrize("field", ["topics", "products"])
def test_content_tag_lists_are_bounded(app, field):
    assert call(app, "PUT", f"/v1/influencers/{ZOE['id']}", ZOE).status_code in (200, 201)
    piece = {**PIECE, "id": f"{PIECE['id']}-{field}"}
    error = refused(call(app, "PUT", f"/v1/content/{piece['id']}", {**piece, field: [f"t{i}" for i in range(10_000)]}))
    assert field in error["fields"]
    assert call(app, "GET", f"/v1/content/{piece['id']}").status_code == 404  # nothing stored
    fine = call(app, "PUT", f"/v1/content/{piece['id']}", {**piece, field: [f"t{i}" for i in range(50)]})
    assert fine.status_code in (200, 201), fine.get_json()


PRIVATE = {"bio", "platforms", "followers", "engagement_rate", "engagement", "sentiment", "score", "score_parts"}


def keys_of(items: list[dict]) -> set[str]:
    found = set()
    for item in items:
        found |= set(item) | {f"influencer.{k}" for k in item.get("influencer") or {}}
    return found


def test_widget_keys_get_a_public_projection_and_planner_keys_everything(app):
    body = {"moment": "desirability", "types": ["influencers", "content"], "limit": 5}
    public = call(app, "POST", "/v1/match", body, role="widget", headers={"Origin": SITE}).get_json()
    full = call(app, "POST", "/v1/match", body).get_json()
    assert public["projection"] == "public" and "projection" not in full
    assert public["content"] and public["influencers"]
    assert [c["id"] for c in public["content"]] == [c["id"] for c in full["content"]]  # the same answer, projected
    seen = keys_of(public["content"]) | keys_of(public["influencers"])
    assert not seen & PRIVATE and "influencer.followers" not in seen and "influencer.category" not in seen
    assert {"title", "url", "format", "influencer.name"} <= keys_of(public["content"])
    assert PRIVATE - {"engagement_rate", "bio", "platforms", "followers"} <= keys_of(full["content"])
    assert {"bio", "platforms", "followers"} <= keys_of(full["influencers"])
    # The cacheable GET: another body and another ETag for each, so that no cache hands one to the other.
    query = "/v1/match?moment=desirability&types=content&limit=3"
    widget = call(app, "GET", query, role="widget", headers={"Origin": SITE})
    planner = call(app, "GET", query)
    assert widget.headers["ETag"] != planner.headers["ETag"]
    assert not keys_of(widget.get_json()["content"]) & PRIVATE and "score_parts" in keys_of(
        planner.get_json()["content"]
    )


def test_failed_authentications_are_limited_per_address(homelive_dir, tmp_path):
    from tests.conftest import copy_data_dir

    data = copy_data_dir(homelive_dir, tmp_path / "data")
    limited = create_app({"DATA_DIR": str(data), "WARM_DETECTOR": False, "RATE_LIMITS": {"failed": "5 per minute"}})
    good = create_key(limited.extensions["relais"].store, "planner")[1]
    client = limited.test_client()

    def get(key: str, address: str = "203.0.113.7"):
        headers = {"Authorization": f"Bearer {key}"}
        return client.get("/v1/plans", headers=headers, environ_base={"REMOTE_ADDR": address})

    assert get(good).status_code == 200
    statuses = [get(f"rk_guess{i}_wrong").status_code for i in range(7)]
    assert statuses == [401] * 5 + [429] * 2
    blocked = get(good)  # now even the right key: a 200 here would tell a guesser it had found one
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert "failed authentications" in blocked.get_json()["error"]["message"]
    assert get(good, address="198.51.100.9").status_code == 200  # another address is not held back


def test_opening_sweeps_crashed_saves_and_leaves_another_process_s_alone(homelive_copy):
    import os
    import subprocess
    import sys
    import time

    from matcher.config import Settings
    from matcher.service import Engine

    directory = homelive_copy / "vectors"
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # a process still saving
    crashed = subprocess.Popen([sys.executable, "-c", "pass"])
    crashed.wait()
    try:
        files = {
            "writing": directory / f".content-v1.faiss.{writer.pid}.k2j4h.tmp",
            "crashed": directory / f".content-v1.faiss.{crashed.pid}.x9q1w.tmp",
            "old": directory / ".influencers-v1.faiss.a8b7c6.tmp",  # named before pids were: judged by its age
            "fresh": directory / ".influencers-v1.faiss.d5e4f3.tmp",
        }
        for path in files.values():
            path.write_bytes(b"partial")
        two_hours_ago = time.time() - 7200
        os.utime(files["old"], (two_hours_ago, two_hours_ago))
        Engine(Settings(data_dir=homelive_copy))  # opening the data dir sweeps what crashed saves left
        assert {name: path.exists() for name, path in files.items()} == {
            "writing": True,
            "crashed": False,
            "old": False,
            "fresh": True,
        }
    finally:
        writer.kill()
        writer.wait()


def test_an_accented_product_name_finds_the_same_people_and_pieces(app):
    """One normalisation (fold) for products, content and influencers alike (issue 13's accent bug)."""

    def ids(products: list[str]) -> tuple[list[str], list[str]]:
        body = {"moment": "technical_validation", "filters": {"products": products}, "limit": 20}
        answer = call(app, "POST", "/v1/match", body).get_json()
        return [i["id"] for i in answer["influencers"]], [c["id"] for c in answer["content"]]

    plain = ids(["homelive"])
    assert plain[0] and plain[1]
    assert ids(["Hômélive"]) == ids(["HOMELIVE"]) == plain


def corrupt(database) -> None:
    """Random bytes over every page of a SQLite file but its header page: a disk that failed under it."""
    import os
    import sqlite3

    with sqlite3.connect(database) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page, pages = db.execute("PRAGMA page_size").fetchone()[0], db.execute("PRAGMA page_count").fetchone()[0]
    with open(database, "r+b") as f:
        f.seek(page)
        f.write(os.urandom(page * (pages - 1)))


def test_a_damaged_database_is_reported_not_a_traceback(homelive_dir, tmp_path):

    from tests.conftest import copy_data_dir

    data = copy_data_dir(homelive_dir, tmp_path / "data")
    served = create_app({"DATA_DIR": str(data), "WARM_DETECTOR": False, "DEV_MODE": True})
    try:
        _damaged(served, data)
    finally:
        served.extensions["relais"].loop.stop()  # its background thread would retry on the broken file forever


def _damaged(served, data) -> None:
    from click.testing import CliRunner

    from matcher.cli import main

    client = served.test_client()
    assert client.get("/health").status_code == 200
    corrupt(data / "relais.db")
    served.extensions["relais"].store.close()  # the next read opens the file afresh, as another worker would
    health = client.get("/health")
    assert health.status_code == 503, health.get_json()
    assert health.get_json()["status"] == "unhealthy" and "matcher check" in health.get_json()["problem"]
    read = client.get("/v1/influencers/inf-julien-domotique")
    assert read.status_code == 503 and read.get_json()["error"]["code"] == "store_unreadable"

    checked = CliRunner().invoke(main, ["check", "--data-dir", str(data)])
    assert checked.exit_code == 1, checked.output
    assert "the database is damaged" in checked.output and "Traceback" not in checked.output

    (data / "relais.db").write_bytes(b"\0" * 4096)  # zeroed: a file SQLite cannot open as a database
    served_again = CliRunner().invoke(main, ["serve", "--data-dir", str(data), "--port", "1"])
    assert served_again.exit_code != 0 and "cannot be read" in served_again.output
    assert "Restore it from a backup" in served_again.output


@pytest.fixture
def small_disk(tmp_path):
    """A filesystem of a few megabytes (tmpfs), mounted for the test: needs root, as CI runs."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a small filesystem needs root (CI runs as root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_acknowledges_exactly_what_is_committed(homelive_dir, small_disk, caplog):
    """Issue 14, item 7: on a full disk a write is refused with 507 and writes nothing, or is acknowledged and is
    committed, never a 500. The case found: the commit fits, the save of new vectors that follows some writes
    does not (it answered 500 for a committed write). Once there is room again, everything acknowledged is served."""
    import os

    from matcher.config import Settings
    from matcher.indexing import REBASE_AFTER
    from matcher.service import Engine
    from tests.conftest import copy_data_dir

    data = copy_data_dir(homelive_dir, small_disk / "data")
    served = create_app({"DATA_DIR": str(data), "WARM_DETECTOR": False, "DEV_MODE": True})
    client = served.test_client()

    def put(n: int):
        piece = {**PIECE, "id": f"cnt-full-{n}", "influencer_id": None, "title": f"Essai {n} du zorglubomètre"}
        return piece["id"], client.put(f"/v1/content/{piece['id']}", json={**piece, "text": "mesures " * 50})

    answers = dict(put(n) for n in range(REBASE_AFTER - 2))  # room enough: the next writes bring the overlay over
    stat = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - 400_000))
    answers.update(put(n) for n in range(REBASE_AFTER - 2, REBASE_AFTER + 40))
    statuses = [r.status_code for r in answers.values()]
    assert set(statuses) <= {201, 507} and 507 in statuses, statuses
    assert "could not save new content vectors" in caplog.text  # the commit fitted, the save did not: still 201
    for record_id, answer in answers.items():
        if answer.status_code == 507:
            error = answer.get_json()["error"]
            assert error["code"] == "insufficient_storage" and "is full" in error["message"]
            assert str(data) in error["message"]
        expected = 200 if answer.status_code == 201 else 404
        assert client.get(f"/v1/content/{record_id}").status_code == expected, record_id
    acknowledged = {i for i, r in answers.items() if r.status_code == 201}
    served.extensions["relais"].loop.stop()

    (small_disk / "filler").unlink()
    reopened = Engine(Settings(data_dir=data))
    assert reopened.check() == []  # the catalogue served holds exactly the stored records, vectors included
    assert all(reopened.content(i) is not None for i in acknowledged)
