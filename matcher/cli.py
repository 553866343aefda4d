"""The ``matcher`` command line: load, index, match, moments, serve, events, kpis, replay. Each command takes
``--data-dir``."""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from matcher.config import PROJECT_DIR, Settings, read_jsonl
from matcher.errors import RelaisError
from matcher.loader import KEPT_REJECTIONS
from matcher.scoring import shorten

logger = logging.getLogger("matcher")
DEFAULT_FIXTURES = (
    PROJECT_DIR / "fixtures" / "homelive" / "influencers.jsonl",
    PROJECT_DIR / "fixtures" / "homelive" / "content.jsonl",
)
DEFAULT_JUDGEMENTS = PROJECT_DIR / "eval" / "homelive.judgements.jsonl"


def data_dir_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--data-dir`` (or RELAIS_DATA_DIR), and turn domain errors into a message and exit code 1."""

    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="RELAIS_DATA_DIR",
        help="Where the database and indexes live (default: ./data in the project; env RELAIS_DATA_DIR).",
    )
    @functools.wraps(command)
    def wrapper(data_dir: Path | None, **kwargs: Any) -> Any:
        settings = Settings.from_env({"data_dir": data_dir} if data_dir else None)
        try:
            return command(settings, **kwargs)
        except RelaisError as e:
            raise click.ClickException(e.message) from e

    return wrapper


def open_engine(settings: Settings) -> Any:
    from matcher.service import Engine  # the model loads here, not when the CLI is imported

    try:
        return Engine(settings)
    except sqlite3.DatabaseError as e:  # truncated, zeroed or corrupted: say which file and what to do
        raise _unreadable(settings, e) from e


def _unreadable(settings: Settings, e: sqlite3.DatabaseError) -> click.ClickException:
    """A damaged database file, said in one line: which file, and what to do."""
    return click.ClickException(
        f"The database {settings.database_path} cannot be read ({e}). Restore it from a backup; "
        "`python -m matcher check` lists what SQLite finds wrong."
    )


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what the engine does.")
def main(verbose: bool) -> None:
    """Relais: the best influencers and content for each micro-moment of a customer journey."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("faiss").setLevel(logging.WARNING)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--if-empty", is_flag=True, help="Do nothing if the database already holds records.")
@click.option("--strict", is_flag=True, help="Exit with status 1 if any line was rejected.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@data_dir_option
def load(settings: Settings, files: tuple[Path, ...], if_empty: bool, strict: bool, as_json: bool) -> None:
    """Import JSON Lines files in the data contract (influencers and content), then index them."""
    if if_empty and _has_records(settings):
        click.echo(f"{settings.data_dir} already holds records: nothing loaded (--if-empty).")
        return
    engine = open_engine(settings)
    total = sum(_count_lines(f) for f in files)
    with click.progressbar(length=total, label="Loading", file=sys.stderr, show_pos=True) as bar:
        reports = engine.load(files, progress=_line_progress(bar))
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2, ensure_ascii=False))
    else:
        for report in reports:
            click.echo(
                f"{report.source}: {report.kind}, {report.lines} lines: {report.accepted} accepted "
                f"({report.inserted} new, {report.updated} updated, {report.unchanged} unchanged), "
                f"{report.rejected_count} rejected"
            )
            for rejection in report.rejected[:20]:
                click.echo(f"  line {rejection.line}: {rejection.reason}")
            if report.rejected_count > 20:
                click.echo(f"  ... and {report.rejected_count - 20} more (--json: the first {KEPT_REJECTIONS})")
        health = engine.health()
        click.echo(
            f"Indexed {health['indexed']['influencers']} influencers and {health['indexed']['content']} "
            f"content items in {settings.data_dir}."
        )
    if strict and any(r.rejected for r in reports):
        sys.exit(1)


@main.command()
@click.option("--reembed", is_flag=True, help="Compute every embedding again, not only the stale ones.")
@data_dir_option
def reindex(settings: Settings, reembed: bool) -> None:
    """Rebuild the FAISS indexes from the database (re-embedding what is stale)."""
    engine = open_engine(settings)
    if engine.opened != "loaded":
        click.echo(f"Opening the data dir: indexes {engine.opened}.")
    counts = engine.reindex(reembed=reembed)
    click.echo(
        f"Embedded {counts['embedded']} records; indexed {counts['influencers']} influencers and "
        f"{counts['content']} content items."
    )


main.add_command(reindex, "index")  # the name it had first


@main.command()
@data_dir_option
def check(settings: Settings) -> None:
    """Verify that the database and the saved indexes agree; exit with status 1 if they do not."""
    from matcher.catalogue import Catalogue
    from matcher.embedding import encoders, moments_encoder
    from matcher.indexing import Indexes
    from matcher.moments import load_moments, moment_vectors
    from matcher.scoring import load_scoring
    from matcher.store import Store

    # No Engine: opening one would repair what this command is meant to report.
    try:
        store = Store(settings.database_path)
        damaged = store.integrity()
    except sqlite3.DatabaseError as e:
        damaged = [f"{settings.database_path}: unreadable ({e})"]
    if damaged:
        click.echo(f"{settings.data_dir}: the database is damaged. Restore it from a backup.", err=True)
        for problem in damaged:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    encoder, queries = encoders(settings)
    moments = load_moments(settings.moments_file)
    vectors = moment_vectors(moments, moments_encoder(encoder, queries))
    catalogue = Catalogue(store, load_scoring(settings.scoring_file), moments, vectors, encoder.dimension)
    problems = Indexes(store, encoder, catalogue, settings.data_dir).check()
    counts = {kind: store.count(kind) for kind in ("influencers", "content")}
    click.echo(
        f"{settings.data_dir}: {counts['influencers']} influencers, {counts['content']} content items, "
        f"database version {store.version}."
    )
    if problems:
        for problem in problems:
            click.echo(f"  PROBLEM {problem}")
        click.echo("Run `matcher reindex` to rebuild the indexes from the database (or start the server: it repairs).")
        sys.exit(1)
    click.echo("OK: the saved vectors agree with the database (records, vectors, model, version, full-text).")


@main.command()
@click.argument("record_id")
@click.option("--kind", type=click.Choice(["influencers", "content"]), help="Needed only if both hold this id.")
@data_dir_option
def delete(settings: Settings, record_id: str, kind: str | None) -> None:
    """Delete an influencer (with all their content) or a piece of content, from the database and the indexes."""
    engine = open_engine(settings)
    kind = kind or engine.kind_of(record_id)
    deleted = engine.delete(kind, record_id)
    extra = f" and their {len(deleted.content_keys)} pieces of content" if kind == "influencers" else ""
    click.echo(f"Deleted {record_id}{extra}.")


@main.command()
@click.argument("query", required=False)
@click.option("--moment", "-m", required=True, help="A moment name (see `matcher moments`).")
@click.option("--limit", "-n", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(["influencers", "content"]),
    help="Only this kind of result (repeatable; default both).",
)
@click.option("--category", multiple=True, help="Influencer category (repeatable).")
@click.option("--network", multiple=True, help="Network, e.g. youtube (repeatable).")
@click.option("--language", multiple=True, help="Language code, e.g. fr (repeatable).")
@click.option("--topic", "topics", multiple=True, help="Topic tag (repeatable).")
@click.option("--product", "products", multiple=True, help="Product tag, e.g. homelive (repeatable).")
@click.option("--min-followers", type=click.IntRange(0))
@click.option("--max-followers", type=click.IntRange(0))
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of tables.")
@data_dir_option
def match(
    settings: Settings,
    query: str | None,
    moment: str,
    limit: int,
    types: tuple[str, ...],
    as_json: bool,
    **filters: Any,
) -> None:
    """Best influencers and content for MOMENT and an optional QUERY (a customer's words)."""
    from matcher.render import match_dict

    engine = open_engine(settings)
    filters = {k: list(v) if isinstance(v, tuple) else v for k, v in filters.items() if v not in ((), None)}
    result = engine.match(moment, query, filters, limit, types or ("influencers", "content"))
    if as_json:
        click.echo(json.dumps(match_dict(result), indent=2, ensure_ascii=False))
        return
    click.echo(f"Moment: {moment}" + (f" · query: {query}" if query else ""))
    if result.influencers or "influencers" in (types or ("influencers",)):
        click.echo("\nInfluencers")
        _table(
            [
                (f"{r.score:.3f}", r.row["name"], r.row["category"], _followers(r.row), shorten(r.explanation, 90))
                for r in result.influencers
            ],
            ["score", "name", "category", "reach", "why"],
        )
    if result.content or "content" in (types or ("content",)):
        click.echo("\nContent")
        _table(
            [
                (
                    f"{r.score:.3f}",
                    shorten(r.row["title"] or r.row["text"], 48),
                    r.row["format"],
                    r.author["name"] if r.author else "(brand)",
                    shorten(r.explanation, 70),
                )
                for r in result.content
            ],
            ["score", "title", "format", "author", "why"],
        )


@main.command()
@data_dir_option
def moments(settings: Settings) -> None:
    """List the moments defined in the moments file."""
    from matcher.moments import load_moments

    for name, moment in load_moments(settings.moments_file).items():
        click.echo(f"{name}: {moment.label.get('en', name)} — {moment.description.get('en', '')}")


@main.command("eval")
@click.option(
    "--set",
    "set_names",
    multiple=True,
    help="An evaluation set of eval/sets.json (repeatable; default: every set whose files are on this machine).",
)
@click.option(
    "--judgements",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Instead of the sets: JSON Lines {query, moment, language, relevant: {id: grade}}.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --judgements: evaluate this loaded data dir instead of loading files into a temporary one.",
)
@click.option(
    "--load",
    "load_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --judgements: contract files to load into a temporary data dir (default: the Homelive fixtures).",
)
@click.option("-k", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--moments", "moments_only", is_flag=True, help="Evaluate moment detection instead of ranking.")
@click.option(
    "--utterances",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --moments, instead of the sets: held-out JSON Lines {text, moment, language, ambiguous?}.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def evaluate(
    set_names: tuple[str, ...],
    judgements: Path | None,
    data_dir: Path | None,
    load_files: tuple[Path, ...],
    k: int,
    moments_only: bool,
    utterances: Path | None,
    as_json: bool,
) -> None:
    """Measure relevance (nDCG, recall, MRR against baselines) or, with --moments, moment detection: on each
    evaluation set separately, then a generalisation line over the sets nothing was tuned on."""
    from matcher.evaluation import load_sets

    try:
        if moments_only and utterances is not None:
            report, text = _evaluate_moments({utterances.stem: utterances}, {})
        elif moments_only:
            sets = _chosen_sets(load_sets(), set_names, "moments")
            chosen = {n: s.utterances for n, s in sets.items()}
            report, text = _evaluate_moments(chosen, {n: s.tuned for n, s in sets.items()})
        elif judgements is not None or data_dir is not None or load_files:
            report, text = _evaluate_ranking(judgements or DEFAULT_JUDGEMENTS, data_dir, load_files, k)
        else:
            report, text = _evaluate_sets(_chosen_sets(load_sets(), set_names, "ranking"), k)
    except RelaisError as e:
        raise click.ClickException(e.message) from e
    click.echo(json.dumps(report, indent=2, ensure_ascii=False) if as_json else text)


def _chosen_sets(sets: dict[str, Any], names: tuple[str, ...], purpose: str) -> dict[str, Any]:
    """The sets named (default: all) that have what ``purpose`` ('ranking' or 'moments') needs on this machine."""
    unknown = sorted(set(names) - set(sets))
    if unknown:
        raise click.BadParameter(f"unknown sets {unknown}; eval/sets.json has {sorted(sets)}", param_hint="--set")
    chosen = {}
    for name, s in sets.items():
        if names and name not in names or (s.utterances if purpose == "moments" else s.judgements) is None:
            continue
        if missing := s.missing(purpose):
            click.echo(f"skipping the {name} set: {', '.join(map(str, missing))} not found", err=True)
            continue
        chosen[name] = s
    return chosen


def _evaluate_sets(sets: dict[str, Any], k: int) -> tuple[dict, str]:
    from matcher import evaluation

    reports, texts, headlines = {}, [], {}
    for name, s in sets.items():
        report, text = _evaluate_ranking(s.judgements, None, s.load, k)
        reports[name], headlines[name] = report, evaluation.headline(report)
        texts.append(f"### {name}{'' if s.tuned else ' (unseen: nothing was tuned on it)'}\n{text}")
    summary = evaluation.format_headlines(headlines, {n: s.tuned for n, s in sets.items()}, k)
    texts.append(f"### every set: relais (hybrid), nDCG@{k}\n{summary}")
    return {"sets": reports, "headlines": headlines}, "\n\n".join(texts)


def _evaluate_ranking(judgements: Path, data_dir: Path | None, files: tuple[Path, ...], k: int) -> tuple[dict, str]:
    import tempfile

    from matcher import evaluation
    from matcher.service import Engine

    with tempfile.TemporaryDirectory(prefix="relais-eval-") as scratch:
        if data_dir is None:
            engine = Engine(Settings.from_env({"data_dir": scratch}))
            engine.load(files or DEFAULT_FIXTURES)
        else:
            engine = Engine(Settings.from_env({"data_dir": data_dir}))
        try:
            report = evaluation.evaluate(engine, evaluation.load_judgements(judgements), k)
        finally:
            engine.close()  # before its scratch dir goes: the loop's thread would look for it every second
    return report, evaluation.format_report(report)


def _evaluate_moments(utterances: dict[str, Path], tuned: dict[str, bool]) -> tuple[dict, str]:
    from matcher.detection import evaluate_detection, format_detection_report, training_examples
    from matcher.embedding import detector_encoder, encoders
    from matcher.moments import detection_settings, load_moments

    settings = Settings.from_env()
    moments = load_moments(settings.moments_file)
    examples_file, threshold = detection_settings(settings.moments_file)
    heldout = {name: read_jsonl(path) for name, path in utterances.items()}
    report = evaluate_detection(
        detector_encoder(settings, encoders(settings)[0]),  # as Engine.detector reads words
        moments,
        training_examples(moments, examples_file),
        heldout,
        threshold,
    )
    return report, format_detection_report(report, tuned)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=None, type=click.IntRange(1, 64), help="Processes serving (default: one per core).")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Threads per worker.")
@click.option(
    "--health-port",
    type=click.IntRange(1, 65535),
    help="Also answer GET /health on this port, outside the request queue: for liveness probes under load.",
)
@click.option("--dev", is_flag=True, help="No API keys: every caller is admin. Local trials only (loopback hosts).")
@data_dir_option
def serve(
    settings: Settings, host: str, port: int, workers: int | None, threads: int, health_port: int | None, dev: bool
) -> None:
    """Serve the HTTP API with gunicorn (pre-forked workers, one per core); logs are JSON lines on stderr."""
    import os

    from api import create_app
    from routes.guard import JsonFormatter
    from server import serve as run

    if dev and host not in ("127.0.0.1", "localhost", "::1"):
        raise click.UsageError("--dev turns authentication off: it only listens on 127.0.0.1, localhost or ::1.")
    workers = workers or os.cpu_count() or 1
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("faiss").setLevel(logging.WARNING)
    try:
        app = create_app({"DATA_DIR": str(settings.data_dir), "DEV_MODE": dev, "WORKERS": workers})
    except sqlite3.DatabaseError as e:  # not a traceback: which file, and what to do
        raise _unreadable(settings, e) from e
    mode = "DEV MODE (no keys)" if dev else "API keys required (python -m matcher keys create)"
    click.echo(f"Relais serving {settings.data_dir} on http://{host}:{port} with {workers} workers — {mode}", err=True)
    run(app, host, port, workers, threads, health_port)


@main.command()
@click.option("--brief", help="A few words on the campaign: what every shortlist ranks for (or the campaign's).")
@click.option("--product", "products", multiple=True, help="Product tag, e.g. homelive (repeatable).")
@click.option("--campaign", help="A campaign id: its products, brief and dates are the defaults.")
@click.option("--moment", "-m", "moments", multiple=True, help="A moment (repeatable; default: all).")
@click.option("--budget", "budgets", multiple=True, help="Activations for a category, e.g. partner=3 (repeatable).")
@click.option("--language", "languages", multiple=True, help="Language code, e.g. fr (repeatable).")
@click.option("--network", "networks", multiple=True, help="Network, e.g. youtube (repeatable).")
@click.option("--min-followers", type=click.IntRange(0))
@click.option("--max-followers", type=click.IntRange(0))
@click.option("--starts-on", help="ISO date, given to the activations.")
@click.option("--ends-on", help="ISO date.")
@click.option("--alternates", type=click.IntRange(0, 10), help="Alternates behind each shortlist (default 3).")
@click.option("--exclude", multiple=True, help="An influencer id never to propose (repeatable).")
@click.option("--product-authors-only", is_flag=True, help="Only people who published about the products.")
@click.option("--dry-run", is_flag=True, help="Compute the plan without storing it.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of tables.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the CSV export instead of tables.")
@data_dir_option
def plan(
    settings: Settings, budgets: tuple[str, ...], dry_run: bool, as_json: bool, as_csv: bool, **fields: Any
) -> None:
    """Plan a campaign, as POST /v1/plans: per moment and category a shortlist, alternates, gaps, activations."""
    from matcher.plans import plan_csv

    body = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items() if v not in ((), None, False)}
    body["budget"] = _budget(budgets)
    try:
        found = open_engine(settings).plans.create(body, save=not dry_run)
    except RelaisError as e:
        details = "; ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in (e.fields or {}).items())
        raise click.ClickException(e.message + (f" {details}" if details else "")) from e
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
    elif as_csv:
        click.echo(plan_csv(found), nl=False)
    else:
        _print_plan(found, stored=not dry_run)


def _budget(values: tuple[str, ...]) -> dict[str, int]:
    """``partner=3`` -> {"partner": 3}."""
    out = {}
    for value in values:
        category, _, count = value.partition("=")
        if not count.strip().isdigit():
            raise click.BadParameter(f"{value!r}: write category=number, e.g. partner=3.", param_hint="--budget")
        out[category.strip()] = int(count)
    return out


def _print_plan(found: dict[str, Any], *, stored: bool) -> None:
    from matcher.scoring import human

    request = found["request"]
    where = f"stored as {found['id']}" if stored else "not stored (--dry-run)"
    click.echo(f"Plan {where} · products: {', '.join(request['products'])} · brief: {shorten(request['brief'], 70)}")
    for moment in found["moments"]:
        click.echo(f"\n{moment['label'].get('en', moment['moment'])} ({moment['moment']})")
        for block in moment["categories"]:
            missing = f", {block['missing']} place(s) unfilled" if block["missing"] else ""
            click.echo(f"\n  {block['category']}: budget {block['budget']}{missing}")
            rows = [
                (
                    str(r["rank"]) if r["role"] == "shortlist" else f"alt {r['rank']}",
                    r["name"],
                    ",".join(r["networks"]),
                    human(r["followers"]),
                    f"{r['score']:.3f}",
                    r["suggested"]["type"],
                    f"{r['fatigue']['value']:.2f}",
                    shorten(r["diversity"] or "", 50),
                )
                for r in (*block["shortlist"], *block["alternates"])
            ]
            headers = ["rank", "name", "networks", "followers", "score", "suggested", "fatigue", "diversity"]
            noted = any(r[-1] for r in rows)  # the diversity column only when a rule moved someone
            _table([r if noted else r[:-1] for r in rows], headers if noted else headers[:-1])
            for s in block["skipped"]:
                click.echo(f"  skipped {s['name']}: {s['reason']}")
        click.echo(f"\n  content that serves it ({len(moment['content'])}):")
        for c in moment["content"]:
            title = shorten(c["title"] or c["excerpt"], 70)
            click.echo(f"    {c['score']:.3f} {c['format']} [{c['language'] or '-'}] {title}")
        for gap in moment["gaps"]:
            click.echo(f"  gap: {gap['message']}")
        for past in moment["past_activations"]:
            rates = f"response {_kpi_text('response_rate', past['response_rate'])}, "
            rates += f"activation {_kpi_text('activation_rate', past['activation_rate'])}"
            click.echo(f"  past {past['type']}: {past['activations']} activations, {past['sent']} sent, {rates}")


@main.group()
def events() -> None:
    """Outcome events: what customers did with what was shown."""


@events.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@data_dir_option
def import_events(settings: Settings, file: Path, as_json: bool) -> None:
    """Events from a log made elsewhere: JSON Lines, or CSV (by its .csv name) with a header of the event fields
    (event_id, type, request_id, item_id, item_kind, rank, moment, at, value). Every invalid line is reported."""
    report = open_engine(settings).import_events(file)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(
            f"{file.name}: {report['accepted']} stored, {report['duplicates']} already stored, "
            f"{len(report['rejected'])} rejected"
        )
        for problem in report["rejected"][:20]:
            click.echo(f"  line {problem['line']}: {json.dumps(problem['errors'], ensure_ascii=False)}")
    if report["rejected"]:
        sys.exit(1)


@main.command()
@click.option("--sessions", default=20_000, show_default=True, type=click.IntRange(100, 10_000_000))
@click.option("--rounds", default=20, show_default=True, type=click.IntRange(2, 1000))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 10), help="Pieces a widget shows.")
@click.option(
    "--shift-at",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="When the hidden preferences change (a share of the sessions; 1: never).",
)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the curves (PNG).")
@click.option("--json", "as_json", type=click.Path(dir_okay=False, path_type=Path), help="Write every figure (JSON).")
@data_dir_option
def replay(
    settings: Settings,
    sessions: int,
    rounds: int,
    seed: int,
    limit: int,
    shift_at: float,
    plot_path: Path | None,
    as_json: Path | None,
) -> None:
    """Show that the loop learns: simulated customers with a hidden truth, served by the real engine (on a copy
    of the data dir; the Homelive fixtures if it is empty). Prints CTR per round for the static, learned and
    oracle rankings, and an off-policy estimate of the learned ranking checked against the truth."""
    from matcher import replay as simulation

    source = settings.data_dir
    if not _has_records(settings):
        import tempfile

        source = Path(tempfile.mkdtemp(prefix="relais-replay-data-"))
        open_engine(replace_data_dir(settings, source)).load(DEFAULT_FIXTURES)
    report = simulation.replay(
        source,
        sessions=sessions,
        rounds=rounds,
        seed=seed,
        limit=limit,
        shift_at=shift_at,
        settings=settings,
        progress=lambda line: click.echo(line, err=True),
    )
    rows = [
        (
            str(c["sessions"]),
            *(f"{c['ctr'][k]:.4f}" for k in ("static", "learned", "oracle")),
            *(f"{c['expected_ctr'][k]:.4f}" for k in ("static", "learned")),
            "shifted" if c["shifted"] else "",
        )
        for c in report["curves"]
    ]
    _table(rows, ["sessions", "CTR static", "learned", "oracle", "expected static", "learned", ""])
    final, check = report["final"], report["off_policy"]
    click.echo(
        f"\nlast tenth of the run: learned / static = {final['learned_over_static']:.2f} (target >= 1.2), "
        f"learned / oracle = {final['learned_over_oracle']:.2f} (target >= 0.85)"
    )
    click.echo(f"static ranking vs hidden truth, Spearman: {report['rank_correlation_static_truth']:.2f}")
    click.echo(
        f"off-policy (SNIPS from {check['logging_sessions']} explored static sessions): estimated CTR of the "
        f"final learned ranking {check['estimated_ctr']:.4f}, true {check['true_ctr']:.4f} "
        f"(error {check['relative_error']:.1%})"
    )
    if plot_path:
        simulation.plot(report, plot_path)
        click.echo(f"plot: {plot_path}")
    if as_json:
        as_json.write_text(json.dumps(report, indent=2))


def replace_data_dir(settings: Settings, data_dir: Path) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, data_dir=data_dir)


KPI_COLUMNS = {  # what `matcher kpis` prints of each grouped section (--json has every figure)
    "activations": (
        "sent",
        "responded",
        "response_rate",
        "accepted",
        "declined",
        "published",
        "activation_rate",
        "influencers_activated",
        "publications",
        "content_quality",
    ),
    "share_of_voice": ("publications", "voice_publications", "share", "engagement_share"),
    "tonality": ("publications", "mean_sentiment", "positive_share", "negative_share", "net_sentiment"),
    "customers": ("impressions", "clicks", "conversions", "dismisses", "ctr", "conversion_rate", "coec"),
}


@main.command()
@click.option("--campaign", multiple=True, help="Campaign id (repeatable).")
@click.option("--moment", "-m", multiple=True, help="Moment (repeatable).")
@click.option("--category", multiple=True, help="Influencer category (repeatable).")
@click.option("--network", multiple=True, help="Network, e.g. youtube (repeatable).")
@click.option("--language", multiple=True, help="Language code, e.g. fr (repeatable).")
@click.option("--since", help="ISO date, inclusive, e.g. 2026-07-01.")
@click.option("--until", help="ISO date, inclusive.")
@click.option(
    "--group-by",
    "group_by",
    multiple=True,
    help="campaign, moment, category, network, language, type, format, quarter or item (repeatable, or commas).",
)
@click.option("--voices", default="activated", show_default=True, help="The influential voices: or a category.")
@click.option("--themes", default=10, show_default=True, type=click.IntRange(1, 100), help="Share of voice themes.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of tables.")
@data_dir_option
def kpis(
    settings: Settings, group_by: tuple[str, ...], voices: str, themes: int, as_json: bool, **filters: Any
) -> None:
    """The brand team's KPIs, as GET /v1/kpis: activations, share of voice, tonality, customers, spread."""
    engine = open_engine(settings)
    filters = {k: list(v) if isinstance(v, tuple) else v for k, v in filters.items() if v not in ((), None)}
    keys = [k.strip() for value in group_by for k in value.split(",") if k.strip()]
    report = engine.kpis(filters, keys, voices, themes)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    given = ", ".join(f"{k}={v if isinstance(v, str) else ','.join(v)}" for k, v in report["filters"].items())
    click.echo("KPIs" + (f" · {given}" if given else "") + (f" · by {', '.join(keys)}" if keys else ""))
    titles = {
        "activations": "Activations",
        "share_of_voice": f"Share of voice (voices: {voices}, {report['share_of_voice']['voices']['count']} people)",
        "tonality": "Tonality of the voices' publications (positive > {positive}, negative < {negative})".format(
            **report["tonality"]["thresholds"]
        ),
        "customers": "Customers: events on what matches showed",
    }
    for name, columns in KPI_COLUMNS.items():
        section = report[name]
        ignored = f" — not split by {', '.join(section['ignored_group_by'])}" if section["ignored_group_by"] else ""
        click.echo(f"\n{titles[name]}{ignored}")
        rows = [
            tuple(str(g["group"][k]) if g["group"][k] is not None else "-" for k in section["group_by"])
            + tuple(_kpi_text(c, g[c]["value"]) for c in columns)
            for g in section["groups"]
        ]
        _table(rows, [*section["group_by"], *(c.replace("_", " ") for c in columns)])
    click.echo("\nSpread of activations over the roster")
    for name in ("roster", "activations", "people_activated", "max_per_person", "mean_per_person", "top10_share"):
        click.echo(f"  {name.replace('_', ' ')}: {_kpi_text(name, report['spread'][name]['value'])}")
    click.echo(f"  gini: {_kpi_text('gini', report['spread']['gini']['value'])}")


def _kpi_text(name: str, value: Any) -> str:
    """A figure for people: '-' for null, shares as percentages."""
    if value is None:
        return "-"
    if name.endswith(("_rate", "share")) or name in ("ctr", "conversions_per_impression"):
        return f"{value:.1%}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(["widget", "planner", "admin"]))
@click.option(
    "--origin",
    "origins",
    multiple=True,
    help="A web origin allowed to use the key (repeatable; required for widget keys), e.g. https://www.example.com.",
)
@click.option("--label", default="", help="What the key is for.")
@data_dir_option
def create_key(settings: Settings, role: str, origins: tuple[str, ...], label: str) -> None:
    """Create a key and print it (it is stored hashed: this is the only time it is shown)."""
    from matcher.keys import create_key as create
    from matcher.store import Store

    record, key = create(Store(settings.database_path), role, origins, label)
    click.echo(key)
    where = f" from {', '.join(record.origins)}" if record.origins else ""
    click.echo(f"Created {role} key {record.key_id}{where}. Store it now: it cannot be shown again.", err=True)


@keys.command("list")
@data_dir_option
def list_keys(settings: Settings) -> None:
    """List keys: id, role, origins, label, created, revoked."""
    from matcher.keys import list_keys as listed
    from matcher.store import Store

    rows = [
        (k.key_id, k.role, ",".join(k.origins) or "-", k.label or "-", k.created_at[:10], (k.revoked_at or "")[:10])
        for k in listed(Store(settings.database_path))
    ]
    _table(rows, ["key id", "role", "origins", "label", "created", "revoked"])


@keys.command("revoke")
@click.argument("key_id")
@data_dir_option
def revoke_key(settings: Settings, key_id: str) -> None:
    """Revoke a key at once: its next request gets 401."""
    from matcher.keys import revoke_key as revoke
    from matcher.store import Store

    if not revoke(Store(settings.database_path), key_id):
        raise click.ClickException(f"No active key {key_id!r}.")
    click.echo(f"Revoked {key_id}.")


def _has_records(settings: Settings) -> bool:
    if not settings.database_path.exists():
        return False
    from matcher.store import Store

    store = Store(settings.database_path)
    return store.count("influencers") + store.count("content") > 0


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _line_progress(bar: Any) -> Callable[[str, int, int], None]:
    """Advance the bar by lines read; show the embedding stage in its label."""
    seen: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage.startswith("reading"):
            bar.update(done - seen.get(stage, 0))
            seen[stage] = done
        else:
            bar.label = f"{stage} {done}/{total}"
            bar.render_progress()

    return progress


def _followers(row: dict[str, Any]) -> str:
    """The largest audience and where it is: '1.4M youtube'."""
    from matcher.scoring import human

    largest = max(row["platforms"], key=lambda p: p["followers"], default={"network": "", "followers": 0})
    return f"{human(largest['followers'])} {largest['network']}"


def _table(rows: list[tuple[str, ...]], headers: list[str]) -> None:
    if not rows:
        click.echo("  (none)")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    click.echo("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        click.echo("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
