"""The brand team's KPIs against a small hand-written log over the Homelive fixtures: every expected value below
is worked out by hand from the log and the fixture records (the arithmetic is in the comments)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from api import create_app
from matcher import kpis as kpi_module
from matcher.cli import main
from matcher.config import PACKAGE_DIR, Settings
from matcher.errors import InvalidRequestError
from matcher.keys import create_key
from matcher.service import Engine
from models.kpi_schemas import GROUP_BY_TEXT
from tests.conftest import copy_data_dir

# Our own format weights, so that the expected qualities do not move when the brand edits scoring.json.
FORMAT_QUALITY = {"instagram_post": 0.4, "article": 0.9, "tweet": 0.2, "testimonial": 0.6, "comparison_test": 1.0}
SITE = "https://www.homelive.example"

# fmt: off
CAMPAIGNS = [("cmp-rentree", "Rentrée"), ("cmp-hiver", "Hiver")]
# (id, campaign, influencer, moment, type, status, sent_at, created_at, publications)
ACTIVATIONS = [
    ("a1", "cmp-rentree", "inf-claire-et-la-maison", "discovery", "product_test", "published",
     "2026-10-02T09:00:00+00:00", "2026-09-25T09:00:00+00:00", ["cnt-claire-et-la-maison-06"]),  # instagram_post
    ("a2", "cmp-rentree", "inf-pauline-delorme-maison-douce", "discovery", "product_test", "published",
     "2026-10-03T09:00:00+00:00", "2026-09-25T09:00:00+00:00",
     ["cnt-pauline-delorme-maison-douce-05", "cnt-pauline-delorme-maison-douce-04"]),  # article, tweet
    ("a3", "cmp-rentree", "inf-vincent-darmon", "discovery", "event", "accepted",
     "2026-09-20T09:00:00+00:00", "2026-09-10T09:00:00+00:00", []),
    ("a4", "cmp-rentree", "inf-vincent-darmon", "discovery", "interview", "declined",
     "2026-10-05T09:00:00+00:00", "2026-09-30T09:00:00+00:00", []),
    ("a5", "cmp-rentree", "inf-mathilde-serrano", "discovery", "event", "sent",
     "2026-10-06T09:00:00+00:00", "2026-10-01T09:00:00+00:00", []),
    ("a6", "cmp-rentree", "inf-stephane-delacourt", "discovery", "visit", "proposed",
     None, "2026-10-07T09:00:00+00:00", []),
    ("b1", "cmp-hiver", "inf-sandrine-berthelot", "technical_validation", "product_test", "published",
     "2026-01-10T09:00:00+00:00", "2026-01-05T09:00:00+00:00",
     ["cnt-sandrine-berthelot-02", "cnt-sandrine-berthelot-03"]),  # tweet, testimonial
    ("b2", "cmp-hiver", "inf-vincent-darmon", "technical_validation", "product_test", "published",
     "2026-02-01T09:00:00+00:00", "2026-01-20T09:00:00+00:00",
     ["cnt-vincent-darmon-05", "cnt-gone-01"]),  # comparison_test, and a piece no longer stored
    ("b3", "cmp-hiver", "inf-hugo-perrin-labo", "technical_validation", "product_test", "declined",
     "2026-01-15T09:00:00+00:00", "2026-01-12T09:00:00+00:00", []),
    ("b4", "cmp-hiver", "inf-julien-domotique", "technical_validation", "press", "sent",
     "2026-03-01T09:00:00+00:00", "2026-02-20T09:00:00+00:00", []),
]
CLAIRE, MES28 = "cnt-claire-et-la-maison-06", "cnt-mes-28-metres-carres-05"  # both instagram_post, affinity
VINCENT, HUGO, SANDRINE = "cnt-vincent-darmon-05", "cnt-hugo-perrin-labo-04", "cnt-sandrine-berthelot-03"
# comparison_test (statutory), article (partner), testimonial (customer)
SERVED = [  # (request_id, at, moment, items)
    ("req-1", "2026-10-10T10:00:00", "discovery",
     [["content", CLAIRE, 1, 1.0], ["content", MES28, 2, 1.0], ["influencers", "inf-claire-et-la-maison", 1, 1.0]]),
    ("req-2", "2026-10-11T10:00:00", "discovery", [["content", MES28, 1, 1.0], ["content", CLAIRE, 2, 1.0]]),
    ("req-3", "2026-02-01T10:00:00", "technical_validation",
     [["content", VINCENT, 1, 1.0], ["content", HUGO, 2, 1.0], ["content", SANDRINE, 3, 1.0]]),
    ("req-4", "2026-02-02T10:00:00", "technical_validation", [["content", VINCENT, 1, 1.0], ["content", HUGO, 2, 1.0]]),
]
# (event_id, type, request_id, kind, item_id, rank, moment, at)
EVENTS = [
    ("e01", "impression", "req-1", "content", CLAIRE, 1, "discovery", "2026-10-10T10:00:05"),
    ("e02", "impression", "req-1", "content", MES28, 2, "discovery", "2026-10-10T10:00:05"),
    ("e03", "impression", "req-1", "influencers", "inf-claire-et-la-maison", 1, "discovery", "2026-10-10T10:00:05"),
    ("e04", "click", "req-1", "content", CLAIRE, 1, "discovery", "2026-10-10T10:00:09"),
    ("e05", "conversion", "req-1", "content", CLAIRE, 1, "discovery", "2026-10-10T10:05:00"),
    ("e06", "dismiss", "req-1", "content", MES28, 2, "discovery", "2026-10-10T10:00:10"),
    ("e07", "impression", "req-2", "content", MES28, 1, "discovery", "2026-10-11T10:00:05"),
    ("e08", "impression", "req-2", "content", CLAIRE, 2, "discovery", "2026-10-11T10:00:05"),
    ("e09", "click", "req-2", "content", MES28, 1, "discovery", "2026-10-11T10:00:08"),
    ("e10", "click", "req-2", "content", CLAIRE, 2, "discovery", "2026-10-11T10:00:20"),
    ("e11", "impression", "req-3", "content", VINCENT, 1, "technical_validation", "2026-02-01T10:00:05"),
    ("e12", "impression", "req-3", "content", HUGO, 2, "technical_validation", "2026-02-01T10:00:05"),
    ("e13", "impression", "req-3", "content", SANDRINE, 3, "technical_validation", "2026-02-01T10:00:05"),
    ("e14", "click", "req-3", "content", VINCENT, 1, "technical_validation", "2026-02-01T10:00:07"),
    ("e15", "click", "req-3", "content", SANDRINE, 3, "technical_validation", "2026-02-01T10:00:30"),
    ("e16", "conversion", "req-3", "content", SANDRINE, 3, "technical_validation", "2026-02-01T10:09:00"),
    # no rank and no moment: both come from what req-4 served (rank 1, technical_validation)
    ("e17", "impression", "req-4", "content", VINCENT, None, None, "2026-02-02T10:00:05"),
    ("e18", "impression", "req-4", "content", HUGO, 2, "technical_validation", "2026-02-02T10:00:05"),
    ("e19", "click", "req-4", "content", HUGO, 2, "technical_validation", "2026-02-02T10:00:12"),
    # imported, tied to no served request: its own rank only
    ("e20", "impression", None, "content", SANDRINE, 4, "technical_validation", "2026-02-03T10:00:00"),
]
# fmt: on


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def scoring_file(tmp_path_factory) -> Path:
    config = json.loads((PACKAGE_DIR / "data" / "scoring.json").read_text(encoding="utf-8"))
    config["format_quality"] = {**config["format_quality"], "_about": "test weights", **FORMAT_QUALITY}
    path = tmp_path_factory.mktemp("scoring") / "scoring.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data_dir(homelive_dir, tmp_path_factory) -> Path:
    """A copy of the Homelive data dir (as ``homelive_copy``, once for the module) holding the log above."""
    path = copy_data_dir(homelive_dir, tmp_path_factory.mktemp("kpis") / "data")
    store = Engine(Settings(data_dir=path)).store
    stamp = "2026-01-01T00:00:00+00:00"
    with store.transaction(bump=False) as db:
        for cid, name in CAMPAIGNS:
            db.execute(
                "INSERT INTO campaigns (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
                [cid, name, stamp, stamp],
            )
        for aid, cid, who, moment, kind, status, sent_at, created_at, pubs in ACTIVATIONS:
            db.execute(
                """INSERT INTO activations (id, campaign_id, influencer_id, moment, type, status, sent_at,
                   publications, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [aid, cid, who, moment, kind, status, sent_at, json.dumps(pubs), created_at, created_at],
            )
        for rid, at, moment, items in SERVED:
            db.execute(
                "INSERT INTO served (request_id, at, moment, policy, items) VALUES (?, ?, ?, 'static', ?)",
                [rid, epoch(at), moment, json.dumps(items)],
            )
        for eid, kind_of_event, rid, kind, item, rank, moment, at in EVENTS:
            db.execute(
                """INSERT INTO events (event_id, type, request_id, kind, item_id, rank, moment, at, received_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [eid, kind_of_event, rid, kind, item, rank, moment, epoch(at), epoch(at)],
            )
    return path


@pytest.fixture(scope="module")
def engine(data_dir, scoring_file) -> Engine:
    return Engine(Settings(data_dir=data_dir, scoring_file=scoring_file))


def total(section: dict) -> dict:
    assert len(section["groups"]) == 1 and section["groups"][0]["group"] == {}
    return section["groups"][0]


def values(group: dict) -> dict:
    return {name: f["value"] for name, f in group.items() if name != "group"}


def by(section: dict, **wanted: str | None) -> dict:
    found = [g for g in section["groups"] if all(g["group"].get(k) == v for k, v in wanted.items())]
    assert len(found) == 1, (wanted, [g["group"] for g in section["groups"]])
    return found[0]


# -- activations --------------------------------------------------------------------------------


def test_activations_overall(engine):
    group = total(engine.kpis({}, [])["activations"])
    assert values(group) == {
        "activations": 10,
        "sent": 9,  # every one but a6 (proposed)
        "influencers_activated": 7,  # claire, pauline, vincent, mathilde, sandrine, hugo, julien
        "responded": 7,  # a1 a2 a3 a4 b1 b2 b3 (a5 and b4 only sent)
        "accepted": 5,  # accepted a3, published a1 a2 b1 b2
        "declined": 2,  # a4, b3
        "published": 4,  # a1 a2 b1 b2
        "response_rate": pytest.approx(7 / 9),  # 7 responded of 9 sent
        "activation_rate": pytest.approx(4 / 9),  # 4 published of 9 sent
        "publications": 7,
        # instagram 0.4 + article 0.9 + tweet 0.2 + tweet 0.2 + testimonial 0.6 + comparison 1.0 + gone 0.5 = 3.8
        "content_quality": pytest.approx(3.8 / 7),
        "formats": {
            "article": pytest.approx(1 / 7),
            "comparison_test": pytest.approx(1 / 7),
            "instagram_post": pytest.approx(1 / 7),
            "testimonial": pytest.approx(1 / 7),
            "tweet": pytest.approx(2 / 7),  # pauline-04 and sandrine-02
            "unknown": pytest.approx(1 / 7),  # cnt-gone-01
        },
    }
    assert group["response_rate"]["n"] == 9 and group["content_quality"]["n"] == 7 and group["activations"]["n"] == 10
    assert group["response_rate"]["definition"] == "responded / sent."


def test_activations_by_type_with_a_zero_denominator(engine):
    section = engine.kpis({}, ["type"])["activations"]
    assert [g["group"]["type"] for g in section["groups"]] == ["event", "interview", "press", "product_test", "visit"]
    event = values(by(section, type="event"))  # a3 accepted, a5 sent
    assert (event["sent"], event["responded"], event["response_rate"], event["activation_rate"]) == (2, 1, 0.5, 0.0)
    assert event["influencers_activated"] == 2 and event["publications"] == 0
    assert event["content_quality"] is None and event["formats"] == {}  # no publication: no mean
    assert values(by(section, type="press"))["response_rate"] == 0.0  # b4: 0 of 1
    product = values(by(section, type="product_test"))  # a1 a2 b1 b2 published, b3 declined
    assert (product["sent"], product["response_rate"], product["activation_rate"]) == (5, 1.0, 0.8)  # 5/5, 4/5
    visit = values(by(section, type="visit"))  # a6, never sent: every rate over 0 sent is null
    assert (visit["activations"], visit["sent"], visit["response_rate"], visit["activation_rate"]) == (1, 0, None, None)


def test_activations_by_quarter_and_type(engine):
    section = engine.kpis({}, ["quarter"])["activations"]
    assert [g["group"]["quarter"] for g in section["groups"]] == ["2026-Q1", "2026-Q3", "2026-Q4"]
    q1 = values(by(section, quarter="2026-Q1"))  # b1..b4: 3 responded of 4 sent, 2 published
    assert (q1["sent"], q1["response_rate"], q1["activation_rate"]) == (4, 0.75, 0.5)
    q4 = values(by(section, quarter="2026-Q4"))  # a1 a2 a4 a5, and a6 by the day it was created
    assert (q4["activations"], q4["sent"], q4["response_rate"], q4["activation_rate"]) == (5, 4, 0.75, 0.5)
    both = engine.kpis({}, ["quarter", "type"])["activations"]
    assert values(by(both, quarter="2026-Q3", type="event"))["response_rate"] == 1.0  # a3
    assert values(by(both, quarter="2026-Q4", type="event"))["response_rate"] == 0.0  # a5
    assert values(by(both, quarter="2026-Q4", type="product_test"))["published"] == 2  # a1 a2


def test_content_quality_and_formats_per_campaign(engine):
    section = engine.kpis({}, ["campaign"])["activations"]
    rentree = values(by(section, campaign="cmp-rentree"))  # instagram 0.4, article 0.9, tweet 0.2
    assert rentree["content_quality"] == pytest.approx(1.5 / 3)
    assert rentree["formats"] == pytest.approx({"article": 1 / 3, "instagram_post": 1 / 3, "tweet": 1 / 3})
    hiver = values(by(section, campaign="cmp-hiver"))  # tweet 0.2, testimonial 0.6, comparison 1.0, unknown 0.5
    assert hiver["content_quality"] == pytest.approx(2.3 / 4)
    assert hiver["response_rate"] == 0.75  # b1 b2 b3 of b1..b4


@pytest.mark.parametrize(
    ("filters", "sent", "responded"),
    [
        ({"campaign": "cmp-hiver"}, 4, 3),
        ({"moment": ["technical_validation"]}, 4, 3),
        ({"since": "2026-10-01"}, 4, 3),  # a1 a2 a4 a5 (a6 created then, never sent)
        ({"until": "2026-09-30"}, 5, 4),  # b1..b4, a3
        ({"category": "statutory"}, 4, 3),  # a3 a4 a5 b2 sent (a6 proposed); a3 a4 b2 responded
        # people on twitter: pauline, vincent, stephane, sandrine, hugo (not claire, mathilde, julien)
        ({"network": "twitter"}, 6, 6),  # a2 a3 a4 b1 b2 b3 (and a6, never sent)
        ({"campaign": "cmp-rentree", "category": "statutory"}, 3, 2),  # a3 a4 a5; a3 a4
        ({"campaign": ["cmp-rentree", "cmp-hiver"], "language": "en"}, 0, 0),  # nobody activated speaks English
    ],
)
def test_activation_filters(engine, filters, sent, responded):
    group = values(total(engine.kpis(filters, [])["activations"]))
    assert (group["sent"], group["responded"]) == (sent, responded)
    assert group["response_rate"] == (responded / sent if sent else None)


def test_an_influencer_counts_in_each_of_their_networks(engine):
    section = engine.kpis({}, ["network"])["activations"]
    assert values(by(section, network="twitter"))["activations"] == 7  # as the twitter filter: a2 a3 a4 a6 b1 b2 b3
    assert values(by(section, network="tiktok"))["activations"] == 2  # claire (a1), mathilde (a5)


# -- share of voice and tonality -----------------------------------------------------------------

Q4 = {"since": "2026-10-01", "until": "2026-12-31"}
Q1 = {"since": "2026-01-01", "until": "2026-03-31"}


def test_share_of_voice_of_the_activated(engine):
    # In 2026-Q4 'maison connectee' tags 5 pieces: claire-06 (4312+213+256 = 4781 reactions), mes-28-05 (2190),
    # la-maison-sobre-04 (1180), pauline-05 (320+242+41 = 603) and Orange's own cnt-orange-12 (520): 9274.
    # 'homelive' tags 4: hugo-perrin-07 (426), py-legoff-05 (56), lea-bidouille-06 (382), yannick-04 (2): 866.
    # No other theme has 4 that quarter. Activated in the quarter: claire, pauline, vincent, mathilde.
    section = engine.kpis(Q4, [], themes=2)["share_of_voice"]
    assert section["themes"] == ["maison connectee", "homelive"]
    assert section["voices"]["count"] == 4 and section["group_by"] == ["quarter", "theme"]
    home = values(by(section, quarter="2026-Q4", theme="maison connectee"))
    assert (home["publications"], home["voice_publications"], home["share"]) == (5, 2, 0.4)  # claire, pauline
    assert home["engagement_share"] == pytest.approx((4781 + 603) / 9274)
    brand = values(by(section, quarter="2026-Q4", theme="homelive"))
    assert (brand["publications"], brand["share"], brand["engagement_share"]) == (4, 0.0, 0.0)  # hugo: sent in Q1
    # Over 2026, hugo (b3, sent in January) is a voice too: 1 of the 4 'homelive' pieces, 426 of 866 reactions.
    year = engine.kpis({"since": "2026-01-01", "until": "2026-12-31"}, [], themes=100)["share_of_voice"]
    brand = values(by(year, quarter="2026-Q4", theme="homelive"))
    assert brand["share"] == 0.25 and brand["engagement_share"] == pytest.approx(426 / 866)
    # Opted-out people's content is not counted: in 2026-Q3 'vacances' tags tribu-de-cinq-04, pixel-et-moka-05 and
    # maison-terracotta-04 (opted out), which alone tags 'simulation de presence'.
    summer = engine.kpis({"since": "2026-07-01", "until": "2026-09-30"}, [], themes=100)["share_of_voice"]
    assert values(by(summer, quarter="2026-Q3", theme="vacances"))["publications"] == 2
    assert "simulation de presence" not in summer["themes"]


def test_share_of_voice_of_a_category(engine):
    # Affinity authors of the 5 'maison connectee' pieces: claire, mes-28, la-maison-sobre (4781 + 2190 + 1180).
    report = engine.kpis({**Q4, "campaign": "cmp-hiver"}, ["quarter", "type"], voices="affinity", themes=1)
    section = report["share_of_voice"]
    assert section["themes"] == ["maison connectee"] and section["ignored_filters"] == ["campaign"]
    assert section["ignored_group_by"] == ["type"]
    assert section["voices"]["count"] == 26  # 28 affinity influencers, 2 of them opted out
    group = values(by(section, quarter="2026-Q4", theme="maison connectee"))
    assert group["share"] == 0.6 and group["engagement_share"] == pytest.approx(8151 / 9274)
    assert engine.kpis(Q4, [], voices="affinity", themes=1)["share_of_voice"]["groups"] == section["groups"]


def test_tonality_with_its_thresholds(engine):
    # Activated in 2026-Q1: sandrine, vincent, hugo, julien. Their pieces of the quarter: sandrine-02 tweet -0.6,
    # sandrine-03 testimonial 0.2 (at the threshold: neither), vincent-05 comparison 0.4, hugo-perrin-04 article
    # 0.4 (julien published nothing then).
    section = engine.kpis(Q1, [])["tonality"]
    assert section["thresholds"] == {"positive": 0.2, "negative": -0.2}
    group = by(section, quarter="2026-Q1")
    assert values(group) == {
        "publications": 4,
        "mean_sentiment": pytest.approx((-0.6 + 0.2 + 0.4 + 0.4) / 4),  # 0.1
        "positive_share": 0.5,  # 0.4 and 0.4
        "negative_share": 0.25,  # -0.6
        "net_sentiment": pytest.approx(1 / 3),  # (2 - 1) / (2 + 1)
    }
    assert group["net_sentiment"]["n"] == 3
    per_format = engine.kpis(Q1, ["format"])["tonality"]
    testimonial = values(by(per_format, quarter="2026-Q1", format="testimonial"))  # 0.2 alone: neither side
    assert testimonial["net_sentiment"] is None and testimonial["mean_sentiment"] == pytest.approx(0.2)
    assert values(by(per_format, quarter="2026-Q1", format="tweet"))["net_sentiment"] == -1.0  # (0 - 1) / 1


# -- customers -----------------------------------------------------------------------------------

# CTR by rank over all 11 impressions: rank 1: e01 e03 e07 e11 e17 (5), clicked by e04 e09 e14 (3) → 0.6;
# rank 2: e02 e08 e12 e18 (4), clicked by e10 e19 (2) → 0.5; rank 3: e13, clicked by e15 → 1.0; rank 4: e20 → 0.
CTR_AT = {1: 0.6, 2: 0.5, 3: 1.0, 4: 0.0}


def test_customers_overall(engine):
    group = total(engine.kpis({}, [])["customers"])
    assert values(group) == {
        "impressions": 11,
        "clicks": 6,
        "conversions": 2,
        "dismisses": 1,
        "ctr": pytest.approx(6 / 11),
        "conversion_rate": pytest.approx(2 / 6),
        "conversions_per_impression": pytest.approx(2 / 11),
        # expected = 5 × 0.6 + 4 × 0.5 + 1 × 1.0 + 1 × 0 = 6 clicks: over everything, 6 / 6
        "coec": pytest.approx(1.0),
    }
    assert group["coec"]["n"] == 11


def test_customers_by_moment_and_format(engine):
    section = engine.kpis({}, ["moment"])["customers"]
    assert [g["group"]["moment"] for g in section["groups"]] == ["discovery", "technical_validation"]  # e17: served's
    discovery = values(by(section, moment="discovery"))  # e01 e02 e03 e07 e08; clicks e04 e09 e10
    assert (discovery["impressions"], discovery["clicks"], discovery["ctr"]) == (5, 3, 0.6)
    # expected: ranks 1, 2, 1, 1, 2 → 3 × 0.6 + 2 × 0.5 = 2.8
    assert discovery["coec"] == pytest.approx(3 / (3 * CTR_AT[1] + 2 * CTR_AT[2]))
    technical = values(by(section, moment="technical_validation"))  # e11 e12 e13 e17 e18 e20; e14 e15 e19
    assert (technical["impressions"], technical["ctr"]) == (6, 0.5)
    assert technical["coec"] == pytest.approx(3 / (2 * 0.6 + 2 * 0.5 + 1.0 + 0.0))  # 3 / 3.2
    formats = engine.kpis({}, ["format"])["customers"]
    photos = values(by(formats, format="instagram_post"))  # claire-06 and mes-28-05: e01 e02 e07 e08
    assert (photos["ctr"], photos["conversion_rate"]) == (0.75, pytest.approx(1 / 3))
    assert photos["coec"] == pytest.approx(3 / (2 * 0.6 + 2 * 0.5))  # 3 / 2.2
    testimonial = values(by(formats, format="testimonial"))  # e13 (rank 3), e20 (rank 4); e15; e16
    assert (testimonial["ctr"], testimonial["conversion_rate"], testimonial["coec"]) == (0.5, 1.0, 1.0)
    person = values(by(formats, format=None))  # the influencer card e03: never clicked
    assert (person["ctr"], person["conversion_rate"], person["coec"]) == (0.0, None, 0.0)  # 0 / 0.6


def test_customers_by_item_and_filtered(engine):
    items = engine.kpis({}, ["item"])["customers"]
    claire = values(by(items, item=f"content/{CLAIRE}"))  # e01 (rank 1), e08 (rank 2); clicked both
    assert (claire["ctr"], claire["coec"]) == (1.0, pytest.approx(2 / (0.6 + 0.5)))
    assert engine.kpis({}, ["item"])["activations"]["ignored_group_by"] == ["item"]
    # statutory: vincent-05 only, e11 and e17 (both rank 1), one click; the rank CTR is then the filter's own: 1/2
    statutory = values(total(engine.kpis({"category": "statutory"}, [])["customers"]))
    assert (statutory["impressions"], statutory["ctr"], statutory["coec"]) == (2, 0.5, 1.0)
    # from October: req-1 and req-2. Rank 1: e01 e03 e07, 2 clicks → 2/3; rank 2: e02 e08, 1 click → 1/2
    october = values(total(engine.kpis({"since": "2026-10-01"}, [])["customers"]))
    assert (october["impressions"], october["clicks"], october["coec"]) == (5, 3, pytest.approx(3 / (3 * 2 / 3 + 1)))
    assert values(total(engine.kpis({"moment": "discovery"}, [])["customers"])) == october
    nothing = values(total(engine.kpis({"since": "2027-01-01"}, [])["customers"]))
    assert (nothing["impressions"], nothing["ctr"], nothing["conversion_rate"], nothing["coec"]) == (
        0,
        None,
        None,
        None,
    )
    campaign = engine.kpis({"campaign": "cmp-hiver"}, [])["customers"]
    assert campaign["ignored_filters"] == ["campaign"] and values(total(campaign))["impressions"] == 11


# -- spread --------------------------------------------------------------------------------------


def test_spread_over_a_small_roster(engine):
    # Statutory, not opted out: vincent, stephane, mathilde, sandrine-morel, bruno, lou-arsene, chef-antoine (7;
    # yanis opted out). Sent: vincent 3 (a3 a4 b2), mathilde 1 (a5); stephane's a6 was never sent.
    spread = engine.kpis({"category": "statutory"}, ["quarter"])["spread"]
    assert spread["ignored_group_by"] == ["quarter"]
    assert {
        name: spread[name]["value"] for name in ("roster", "activations", "people_activated", "max_per_person")
    } == {
        "roster": 7,
        "activations": 4,
        "people_activated": 2,
        "max_per_person": 3,
    }
    assert spread["mean_per_person"]["value"] == pytest.approx(4 / 7)
    assert spread["top10_share"]["value"] == 0.75  # ceil(0.7) = 1 person: vincent, 3 of 4
    # counts 0 0 0 0 0 1 3: Σ|xi - xj| over ordered pairs = 2 × (5 × 1 + 5 × 3 + 2) = 44; / (2 × 7 × 4) = 44 / 56
    assert spread["gini"]["value"] == pytest.approx(44 / 56)
    everyone = engine.kpis({}, [])["spread"]  # 64 people, 3 opted out; ceil(6.1) = 7 get all 9 activations
    assert (everyone["roster"]["value"], everyone["top10_share"]["value"]) == (61, 1.0)
    # 54 zeros, six 1s, one 3: 2 × (54 × 6 + 54 × 3 + 6 × 2) = 996; / (2 × 61 × 9)
    assert everyone["gini"]["value"] == pytest.approx(996 / 1098)
    nobody = engine.kpis({"category": "statutory", "since": "2027-01-01"}, [])["spread"]
    assert (nobody["top10_share"]["value"], nobody["gini"]["value"], nobody["max_per_person"]["value"]) == (
        None,
        None,
        0,
    )


def test_gini_against_the_definition():
    for counts in ([0, 0, 1, 3], [2, 2, 2], [5], [0, 7, 1, 1, 0, 3]):
        pairs = sum(abs(a - b) for a in counts for b in counts)
        assert kpi_module.gini(counts) == pytest.approx(pairs / (2 * len(counts) * sum(counts)))
    assert kpi_module.gini([0, 0]) is None and kpi_module.gini([]) is None


# -- errors, HTTP, CLI ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "group_by", "extra", "field", "message"),
    [
        ({}, ["quarter", "colour"], {}, "group_by", "Unknown group_by key 'colour'."),
        ({"since": "2026-13-01"}, [], {}, "since", "since is not an ISO date: '2026-13-01'."),
        ({"until": "01/10/2026"}, [], {}, "until", "until is not an ISO date: '01/10/2026'."),
        ({"since": "2026-10-01", "until": "2026-09-30"}, [], {}, "until", "until is before since."),
        ({"category": "celebrity"}, [], {}, "category", "Unknown category 'celebrity'."),
        ({"brand": "homelive"}, [], {}, "brand", "Unknown filter 'brand'."),
        ({}, [], {"voices": "famous"}, "voices", "Unknown voices 'famous'."),
        ({}, [], {"themes": 0}, "themes", "themes must be an integer from 1 to 100."),
    ],
)
def test_invalid_arguments(engine, filters, group_by, extra, field, message):
    with pytest.raises(InvalidRequestError) as raised:
        engine.kpis(filters, group_by, **extra)
    assert raised.value.message == message and field in raised.value.fields


def test_the_schema_names_the_engines_group_by_keys():
    assert GROUP_BY_TEXT.replace(" or ", ", ").split(", ") == list(kpi_module.GROUP_KEYS)


@pytest.fixture(scope="module")
def client_and_keys(data_dir, scoring_file):
    app = create_app({"DATA_DIR": str(data_dir), "SCORING_FILE": str(scoring_file), "WARM_DETECTOR": False})
    store = app.extensions["relais"].store
    keys = {role: create_key(store, role, [SITE] if role == "widget" else [])[1] for role in ("widget", "planner")}
    return app.test_client(), keys


def test_http_route(client_and_keys, engine):
    client, keys = client_and_keys
    auth = {"Authorization": f"Bearer {keys['planner']}"}
    repeated = client.get("/v1/kpis?campaign=cmp-hiver&group_by=quarter&group_by=type", headers=auth)
    assert repeated.status_code == 200, repeated.get_json()
    body = repeated.get_json()
    assert body["group_by"] == ["quarter", "type"] and body["filters"] == {"campaign": ["cmp-hiver"]}
    tests = values(by(body["activations"], quarter="2026-Q1", type="product_test"))  # b1 b2 published, b3 declined
    assert (tests["sent"], tests["activation_rate"]) == (3, pytest.approx(2 / 3))
    assert body == engine.kpis({"campaign": ["cmp-hiver"]}, ["quarter", "type"])  # the engine's verb, unchanged
    commas = client.get("/v1/kpis?campaign=cmp-hiver&group_by=quarter,type", headers=auth)
    assert commas.get_json() == body


@pytest.mark.parametrize(
    ("query", "status", "code", "message", "field"),
    [
        ("group_by=colour", 400, "invalid_request", "Unknown group_by key 'colour'.", "group_by"),
        ("since=2026-02-30", 400, "invalid_request", "The request is invalid; see fields.", "since"),
        ("brand=homelive", 400, "invalid_request", "The request is invalid; see fields.", "brand"),
        ("voices=famous", 400, "invalid_request", "Unknown voices 'famous'.", "voices"),
        ("themes=0", 400, "invalid_request", "The request is invalid; see fields.", "themes"),
    ],
)
def test_http_errors(client_and_keys, query, status, code, message, field):
    client, keys = client_and_keys
    response = client.get(f"/v1/kpis?{query}", headers={"Authorization": f"Bearer {keys['planner']}"})
    error = response.get_json()["error"]
    assert (response.status_code, error["code"], error["message"]) == (status, code, message)
    assert field in error["fields"]


def test_http_roles(client_and_keys):
    client, keys = client_and_keys
    widget = client.get("/v1/kpis", headers={"Authorization": f"Bearer {keys['widget']}", "Origin": SITE})
    assert widget.status_code == 403 and widget.get_json()["error"]["code"] == "forbidden"
    assert client.get("/v1/kpis").status_code == 401


def test_cli(data_dir, scoring_file):
    runner = CliRunner()
    env = {"RELAIS_SCORING_FILE": str(scoring_file)}
    base = ["kpis", "--data-dir", str(data_dir), "--campaign", "cmp-hiver", "--group-by", "quarter"]
    as_json = runner.invoke(main, [*base, "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    q1 = values(by(report["activations"], quarter="2026-Q1"))
    assert (q1["response_rate"], q1["content_quality"]) == (0.75, pytest.approx(2.3 / 4))
    tables = runner.invoke(main, [*base, "--group-by", "type"], env=env)
    assert tables.exit_code == 0, tables.output
    assert "Activations" in tables.output and "not split by type" in tables.output  # share of voice ignores type
    press = next(line for line in tables.output.splitlines() if line.split()[:2] == ["2026-Q1", "press"])  # b4
    assert press.split()[:5] == ["2026-Q1", "press", "1", "0", "0.0%"]
    wrong = runner.invoke(main, ["kpis", "--data-dir", str(data_dir), "--group-by", "colour"], env=env)
    assert wrong.exit_code == 1 and "Unknown group_by key 'colour'." in wrong.output
    assert math.isclose(q1["activation_rate"], 0.5)  # b1 b2 published of 4 sent
