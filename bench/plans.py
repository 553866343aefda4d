"""The plans benchmark: how long a plan for three moments and four categories takes, in process, one thread.

    python bench/plans.py                 # the Homelive fixtures (loaded into a temporary data dir)
    python bench/plans.py --kim DATA_DIR  # and instagram-kim scale, from a data dir `matcher load` filled
    python bench/plans.py --runs 30

A plan is 12 influencer matches (3 moments x 4 categories), 3 content matches, the gaps over every piece about
the products, one KPI read and a write. Figures are medians of --runs plans each: a new brief every time (its
embedding included), the same brief with the answer cache emptied (every match ranked again), the same brief
cached, a new brief with the answer rendered as POST /v1/plans does (its schema, then JSON), and a new brief with
three of the people first shortlisted held (their categories then rank 100 people each). The kim data dir
is only read: it is copied first (SQLite through its backup API), since opening it adds the plans table. Asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from matcher.config import PROJECT_DIR, Settings  # noqa: E402
from matcher.store import copy_data_dir  # noqa: E402

FIXTURES = PROJECT_DIR / "fixtures" / "homelive"
MOMENTS = ["discovery", "desirability", "technical_validation"]
BUDGET = {"partner": 4, "affinity": 2, "statutory": 1, "customer": 2}
BRIEFS = [
    "détecteur de fumée connecté testé à la maison",
    "caméra de surveillance pour la famille et les animaux",
    "installer des capteurs d'ouverture sans percer",
    "la maison connectée pour partir tranquille en vacances",
    "smart home security kit compatible with the box",
    "alarme connectée et abonnement sans engagement",
    "domotique simple pour un petit appartement",
    "tester une sirène et un détecteur de mouvement",
    "home automation for a cosy family home",
    "sécurité des données et vidéos stockées en France",
]
TARGETS = {"fixtures": 300.0, "kim": 1000.0}


def single_thread(engine: Any) -> None:
    """What a worker has when there is one per core: one thread for BLAS and for the encoders."""
    import faiss
    import threadpoolctl

    threadpoolctl.threadpool_limits(1)
    faiss.omp_set_num_threads(1)
    engine.after_fork(1)


def median_ms(call: Any, items: list[Any]) -> float:
    times = []
    for item in items:
        started = time.perf_counter()
        call(item)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(engine: Any, runs: int, products: list[str]) -> dict[str, Any]:
    import orjson

    from models.plan_schemas import PlanOutSchema

    single_thread(engine)
    plans = engine.plans

    def body(brief: str) -> dict[str, Any]:
        return {"products": products, "brief": brief, "moments": MOMENTS, "budget": BUDGET}

    first = plans.create(body(BRIEFS[0]))  # warm: the first match of a process pays for its sessions
    briefs = [f"{BRIEFS[i % len(BRIEFS)]} {i}" for i in range(runs)]  # new words: a new embedding each time

    def uncached(_: Any) -> None:
        engine.answers.clear()
        plans.create(body(BRIEFS[1]))

    out = {
        "new_brief": median_ms(lambda b: plans.create(body(b)), briefs),
        "uncached": median_ms(uncached, range(runs)),
        "cached": median_ms(lambda _: plans.create(body(BRIEFS[1])), range(runs)),
    }

    def answered(brief: str) -> None:
        orjson.dumps(PlanOutSchema().dump(plans.create(body(brief))))

    out["answered"] = median_ms(answered, [f"{b} answered" for b in briefs])
    # Three people held: each category with someone not contactable ranks as many as it may, to say who was skipped.
    until = (date.today() + timedelta(days=30)).isoformat()
    for row in [r for m in first["moments"] for b in m["categories"] for r in b["shortlist"]][:3]:
        engine.planning.set_hold(row["id"], until, "bench")
    out["held"] = median_ms(lambda b: plans.create(body(b)), [f"{b} held" for b in briefs])
    shortlisted = sum(len(b["shortlist"]) for m in first["moments"] for b in m["categories"])
    gaps = sum(len(m["gaps"]) for m in first["moments"])
    out["shape"] = f"{shortlisted} shortlisted, {gaps} gaps"
    out["records"] = engine.store.count("influencers") + engine.store.count("content")
    return out


def report(name: str, figures: dict[str, Any]) -> None:
    target = TARGETS[name]
    print(f"\n{name}: {figures['records']:,} records; first plan: {figures['shape']}")
    print(f"  {'plan (3 moments x 4 categories), p50':42} {'ms':>9}  target")
    for label, key in (
        ("new brief (embedding included)", "new_brief"),
        ("same brief, answer cache emptied", "uncached"),
        ("same brief, answers cached", "cached"),
        ("new brief, rendered as the API answers it", "answered"),
        ("new brief, 3 people held", "held"),
    ):
        met = "yes" if figures[key] < target else "NO"
        print(f"  {label:42} {figures[key]:9.1f}  < {target:.0f} ms: {met}")


def main() -> None:
    from matcher.service import Engine

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kim", type=Path, help="a data dir holding instagram-kim (read only: copied first)")
    parser.add_argument("--runs", type=int, default=15, help="plans per figure (medians)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relais-bench-plans-") as scratch:
        data = Path(scratch) / "fixtures"
        engine = Engine(Settings.from_env({"data_dir": data}))
        engine.load([FIXTURES / "influencers.jsonl", FIXTURES / "content.jsonl"])
        report("fixtures", measure(engine, args.runs, ["homelive"]))
        engine.close()
        if args.kim:
            started = time.perf_counter()
            kim = copy_data_dir(args.kim.expanduser(), Path(scratch) / "kim")
            engine = Engine(Settings.from_env({"data_dir": kim}))
            print(f"\n(kim copied and opened in {time.perf_counter() - started:.1f} s: indexes {engine.opened})")
            report("kim", measure(engine, args.runs, ["homelive"]))
            engine.close()


if __name__ == "__main__":
    main()
