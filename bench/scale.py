"""The README's figures at scale, measured in one run on the shared dataset instagram-kim.

    python bench/scale.py                              # load kim into a temporary data dir, then measure
    python bench/scale.py --keep --json kim.json       # keep the data dir (its path is printed), write the figures
    python bench/scale.py --data-dir DIR               # a dir `matcher load` already filled: no load, the rest
    python bench/scale.py --limit-lines 2000           # the first 2000 lines of each file: a check in a minute

Prints: the load's wall time and the process's peak resident memory, lines loaded / accepted / rejected and the
rejections by reason (top 10); how long `engine.check()` takes (and `python -m matcher check`, a new process with
its model load) and that it finds no problem; text-match latency p50 / p90 / p99 over --queries new French and
English queries, cycling through the moments; p50 of the same with each of four filters; a summary table. The
load takes 14 to 23 minutes on 2 cores (embedding is nearly all of it), the rest about
a minute. Matches run on one thread, as in `bench/serving.py` (what each worker gets with one worker per core).
The shared data is read where it is, never copied into the repository (--limit-lines copies its lines to /tmp).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.serving import ms, single_thread, timed  # noqa: E402
from matcher.config import PROJECT_DIR, Settings  # noqa: E402

KIM = PROJECT_DIR.parent / "shared" / "data" / "instagram-kim"
FILES = [KIM / "influencers.jsonl", KIM / "content.jsonl"]
FILTERS = [{"language": "fr"}, {"category": "customer"}, {"network": "instagram"}, {"min_followers": 100000}]

# Queries: an opening, a subject of one domain and a closing, in each language. 7 x 2 x 6 x 6 x 6 = 3,024 of them.
SUBJECTS = {
    "fr": [
        ["robe d'été", "veste en jean", "baskets blanches", "tenue de soirée", "mode éthique", "sac en cuir"],
        ["routine soin visage", "maquillage naturel", "crème solaire", "soin cheveux bouclés", "parfum", "vernis"],
        ["week-end à Lisbonne", "road trip en Bretagne", "voyage au Japon", "hôtel de charme", "randonnée", "plage"],
        ["recette de lasagnes", "cuisine végétarienne", "pâtisserie maison", "brunch", "restaurant italien", "vin"],
        ["programme musculation", "course à pied", "yoga du matin", "perdre du poids", "cardio", "crossfit"],
        ["smartphone photo", "ordinateur portable", "casque sans fil", "montre connectée", "console", "tablette"],
        ["décoration salon", "rangement cuisine", "plantes d'intérieur", "maison connectée", "jardin", "luminaire"],
    ],
    "en": [
        ["summer dress", "denim jacket", "white sneakers", "evening outfit", "sustainable fashion", "leather bag"],
        ["skincare routine", "natural makeup", "sunscreen", "curly hair care", "perfume", "nail polish"],
        ["weekend in Lisbon", "road trip in California", "trip to Japan", "boutique hotel", "hiking", "beach"],
        ["lasagna recipe", "vegetarian cooking", "homemade pastry", "brunch", "italian restaurant", "wine pairing"],
        ["strength training plan", "running", "morning yoga", "weight loss", "cardio workout", "crossfit"],
        ["camera phone", "laptop", "wireless headphones", "smartwatch", "game console", "tablet"],
        ["living room decor", "kitchen storage", "houseplants", "smart home", "garden", "lighting"],
    ],
}
OPENINGS = {
    "fr": ["idées de", "avis sur", "conseils pour", "tendance", "test de", "inspiration"],
    "en": ["ideas for", "review of", "tips for", "trending", "testing", "inspiration"],
}
CLOSINGS = {
    "fr": ["petit budget", "pour débutants", "à Paris", "en 2024", "au quotidien", "sans se ruiner"],
    "en": ["on a budget", "for beginners", "in London", "in 2024", "for every day", "that actually work"],
}


def queries(seed: int = 0) -> list[str]:
    """Every query once, shuffled: French and English, seven domains; none repeats, so none is cached."""
    out = [
        f"{opening} {subject} {closing}"
        for language in ("fr", "en")
        for domain in SUBJECTS[language]
        for opening, subject, closing in itertools.product(OPENINGS[language], domain, CLOSINGS[language])
    ]
    random.Random(seed).shuffle(out)
    return out


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def first_lines(files: list[Path], n: int, into: Path) -> list[Path]:
    """The first n lines of each file, copied to a temporary directory (same names: the kind is read from them)."""
    out = []
    for path in files:
        with path.open("rb") as source, (into / path.name).open("wb") as copy:
            copy.writelines(itertools.islice(source, n))
        out.append(into / path.name)
    return out


def load(data_dir: Path, files: list[Path]) -> tuple[dict[str, Any], Any]:
    """What `python -m matcher load` does, timed: open an engine (the model loads), import, embed, index."""
    from matcher.service import Engine

    shown = {"at": time.monotonic()}

    def progress(stage: str, done: int, total: int) -> None:
        if time.monotonic() - shown["at"] > 30:
            print(f"  ... {stage}: {done}/{total}", file=sys.stderr, flush=True)
            shown["at"] = time.monotonic()

    started = time.perf_counter()
    engine = Engine(Settings.from_env({"data_dir": data_dir}))
    opened = time.perf_counter() - started
    reports = engine.load(files, progress=progress)
    seconds = time.perf_counter() - started
    reasons: Counter[str] = Counter()
    for report in reports:
        reasons.update(report.rejected_by_reason)  # grouped by loader.reason_kind
    out = {
        "load_s": seconds,
        "engine_open_s": opened,
        "peak_rss_mb": peak_mb(),
        "files": {
            Path(r.source).name: {"lines": r.lines, "accepted": r.accepted, "rejected": r.rejected_count}
            for r in reports
        },
        "lines": sum(r.lines for r in reports),
        "accepted": sum(r.accepted for r in reports),
        "rejected": sum(r.rejected_count for r in reports),
        "rejected_by_reason": dict(reasons.most_common()),
    }
    print(f"loaded in {minutes(seconds)} (engine opened in {opened:.1f} s), peak memory {out['peak_rss_mb']:.0f} MB")
    for name, r in out["files"].items():
        print(f"  {name}: {r['lines']:,} lines, {r['accepted']:,} accepted, {r['rejected']:,} rejected")
    print(f"  all: {out['lines']:,} lines, {out['accepted']:,} accepted, {out['rejected']:,} rejected")
    for reason, count in reasons.most_common(10):
        print(f"    {count:6,}  {reason}")
    return out, engine


def check(engine: Any) -> tuple[float, list[str]]:
    started = time.perf_counter()
    problems = engine.check()
    seconds = time.perf_counter() - started
    print(f"engine.check(): {seconds:.2f} s, {len(problems)} problems" + "".join(f"\n  {p}" for p in problems))
    return seconds, problems


def check_command(data_dir: Path) -> dict[str, Any]:
    """`python -m matcher check` as a user runs it: a new process, its model load included."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "matcher", "check", "--data-dir", str(data_dir)],
                          cwd=PROJECT_DIR, capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - started
    print(f"python -m matcher check: {seconds:.2f} s, exit status {done.returncode}: {done.stdout.strip()}")
    return {"check_command_s": seconds, "check_command_status": done.returncode}


def latencies(data_dir: Path, n: int) -> dict[str, Any]:
    """Text matches in a new engine on one thread, each query new to the process, moments in turn."""
    from matcher.service import Engine

    engine = Engine(Settings.from_env({"data_dir": data_dir}))
    single_thread(engine)
    moments = sorted(engine.moments)
    asked = iter(queries())
    for q in itertools.islice(asked, 10):  # the lazy parts (sessions, first scans) aside
        engine.match(moments[0], q, limit=10)

    def run(filters: dict[str, Any] | None) -> dict[str, Any]:
        items = [(moments[i % len(moments)], q) for i, q in enumerate(itertools.islice(asked, n))]
        found = []

        def one(item: tuple[str, str]) -> None:
            result = engine.match(item[0], item[1], filters=filters, limit=10)
            found.append(len(result.influencers) + len(result.content))

        seconds = timed(one, items)
        figures = ms(seconds) | {"p90": float(np.percentile(np.array(seconds) * 1000, 90))}
        return figures | {"results_mean": float(np.mean(found))}

    out = {"text": run(None)}
    t = out["text"]
    print(f"text match, {t['n']} queries, {len(moments)} moments in turn: p50 {t['p50']:.1f} ms, "
          f"p90 {t['p90']:.1f} ms, p99 {t['p99']:.1f} ms ({t['results_mean']:.1f} results on average)")  # fmt: skip
    for filters in FILTERS:
        name = json.dumps(filters)
        out[name] = run(filters)
        print(f"  with {name}: p50 {out[name]['p50']:.1f} ms ({out[name]['results_mean']:.1f} results on average)")
    return out


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds >= 60 else f"{seconds:.1f} s"


def summary(r: dict[str, Any]) -> str:
    loaded, text = r.get("load"), r["match"]["text"]
    rows = [("figure", "measured")]
    if loaded:
        rows += [
            ("load, embed and index", minutes(loaded["load_s"])),
            ("peak memory (ru_maxrss, during the load)", f"{loaded['peak_rss_mb'] / 1024:.2f} GB"),
            ("lines rejected", f"{loaded['rejected']:,}"),
        ]
        rows += [(f"  {reason[:60]}", f"{count:,}") for reason, count in list(loaded["rejected_by_reason"].items())[:3]]
    rows += [
        ("engine.check() (problems)", f"{r['check_s']:.2f} s ({len(r['check_problems'])})"),
        ("python -m matcher check (exit status)", f"{r['check_command_s']:.2f} s ({r['check_command_status']})"),
        ("text match p50 / p90 / p99", f"{text['p50']:.1f} / {text['p90']:.1f} / {text['p99']:.1f} ms"),
    ]
    rows += [(f"  filtered {name} p50", f"{f['p50']:.1f} ms") for name, f in r["match"].items() if name != "text"]
    rows.append(("peak memory, whole run", f"{r['peak_rss_mb'] / 1024:.2f} GB"))
    width = max(len(row[0]) for row in rows)
    return "\n".join(f"{a:{width}}  {b}" for a, b in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="a data dir: used as is if it holds records, else loaded")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir (its path is printed)")
    parser.add_argument("--queries", type=int, default=200, help="text matches timed, and as many per filter")
    parser.add_argument("--limit-lines", type=int, help="load only the first N lines of each file")
    parser.add_argument("--json", type=Path, help="write every figure to this file too")
    args = parser.parse_args()
    if args.queries * (1 + len(FILTERS)) + 10 > len(queries()):
        parser.error(f"--queries: at most {(len(queries()) - 10) // (1 + len(FILTERS))}")
    work = Path(tempfile.mkdtemp(prefix="relais-scale-"))
    data_dir = args.data_dir or work / "data"
    results: dict[str, Any] = {"data_dir": str(data_dir)}
    try:
        from matcher.cli import _has_records

        if args.data_dir and _has_records(Settings.from_env({"data_dir": data_dir})):
            print(f"{data_dir} already holds records: not loaded")
            from matcher.service import Engine

            engine = Engine(Settings.from_env({"data_dir": data_dir}))
        else:
            files = first_lines(FILES, args.limit_lines, work) if args.limit_lines else FILES
            print(f"loading {', '.join(map(str, files))} into {data_dir}")
            results["load"], engine = load(data_dir, files)
        results["check_s"], results["check_problems"] = check(engine)
        engine.close()  # its background thread stopped: the engine matched on is a new one
        del engine
        results.update(check_command(data_dir))
        results["match"] = latencies(data_dir, args.queries)
        results["peak_rss_mb"] = peak_mb()
    finally:
        if args.keep and not args.data_dir:
            print(f"data dir kept: {data_dir}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(summary(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    if results["check_problems"] or results["check_command_status"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
