"""Does the second encoder (``RELAIS_SECOND_ENCODER=e5``: MiniLM and multilingual-e5-small side by side in one
vector, ``embedding.JoinedEncoder``) rank better than MiniLM alone, and at which weight? Prints `matcher eval`'s
figures per evaluation set: nDCG@10 overall, influencers, content, French, English, and content's English-minus-
French gap, for MiniLM alone (the default) and for e5's weight in the dense similarity at each of --weights.

    python bench/encoder_ensemble.py                    # every set of eval/sets.json whose files are here
    python bench/encoder_ensemble.py --set velonia --weights 0.5
    python bench/encoder_ensemble.py --set youtube-fr --weights 0.5 --latency 300   # and a text match's cost

Each set is loaded twice into --work (default .cache/bench-ensemble; kept between runs), once per records'
encoder; the weight is the queries' alone, so one joined load serves every weight. e5 encodes records slowly
(`python bench/encoders.py`): the first run took 621 s for youtube-fr's 4,000 records (about 15 minutes before e5
ran on onnxruntime). Choose a weight on the tuned sets (Homelive, youtube-fr) and read it on the others.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.load import distinct_queries  # noqa: E402
from matcher import embedding, evaluation  # noqa: E402
from matcher.config import PROJECT_DIR, Settings  # noqa: E402
from matcher.service import Engine  # noqa: E402

SYSTEM = "relais (hybrid)"


def loaded(data_dir: Path, files: tuple[Path, ...], settings: Settings) -> None:
    """Load ``files`` into ``data_dir`` unless it holds them already."""
    if (data_dir / "relais.db").exists():
        return
    started = time.perf_counter()
    engine = Engine(settings)
    engine.load(files)
    engine.close()
    print(f"  loaded {data_dir.name} in {time.perf_counter() - started:.0f} s", flush=True)


def figures(engine: Engine, judgements: list[evaluation.Judgement]) -> dict[str, float | None]:
    engine.served_log = False
    chosen = {SYSTEM: evaluation.relais(engine, "hybrid")}
    return evaluation.headline(evaluation.evaluate(engine, judgements, 10, chosen))


def latency(engine: Engine, queries: list[str]) -> str:
    """A text match's median and 99th percentile over ``queries`` (each new to the process, so each encoded), on
    one thread as a worker has when there is one per core (``bench/serving.py``)."""
    from bench.serving import ms, single_thread, timed

    single_thread(engine)
    for q in queries[:20]:
        engine.match("technical_validation", q)
    t = ms(timed(lambda q: engine.match("technical_validation", q), queries[20:]))
    return f"  text match p50 {t['p50']:.1f} ms, p99 {t['p99']:.1f} ms (n={t['n']}, one thread)"


def row(label: str, h: dict[str, float | None]) -> str:
    def f(v: float | None) -> str:
        return f"{v:8.3f}" if v is not None else "       -"

    gap = h["content_en"] - h["content_fr"] if h["content_en"] is not None and h["content_fr"] is not None else None
    cells = [h["overall"], h["influencers"], h["content"], h["fr"], h["en"]]
    return f"{label:24}{''.join(f(v) for v in cells)}{f(gap)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", help="an evaluation set of eval/sets.json (default: all here)")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.3, 0.5, 0.7], help="e5's weights to try")
    parser.add_argument("--latency", type=int, default=0, help="also time this many text matches per engine")
    parser.add_argument("--work", type=Path, default=PROJECT_DIR / ".cache" / "bench-ensemble")
    args = parser.parse_args()
    print(f"nDCG@10{'':17}{'overall':>8}{'infl':>8}{'content':>8}{'fr':>8}{'en':>8}{'en-fr':>8}")
    for name, s in evaluation.load_sets().items():
        if (args.set and name not in args.set) or s.judgements is None:
            continue
        if not all(Path(f).exists() for f in [*s.load, s.judgements]):
            continue
        print(f"== {name}{'' if s.tuned else ' (unseen: nothing was tuned on it)'}", flush=True)
        judgements = evaluation.load_judgements(s.judgements)
        contents = [f for f in s.load if "content" in Path(f).name]
        timing = distinct_queries(args.latency + 20, contents) if args.latency else []
        alone = Settings.from_env({"data_dir": args.work / name, "second_encoder": ""})
        loaded(alone.data_dir, s.load, alone)
        engine = Engine(alone)
        print(row("minilm (default)", figures(engine, judgements)), flush=True)
        if args.latency:
            print(latency(engine, timing), flush=True)
        engine.close()
        joined = Settings.from_env({"data_dir": args.work / f"{name}-joined", "second_encoder": "e5"})
        loaded(joined.data_dir, s.load, joined)
        records = embedding.encoders(joined)[0]
        for weight in args.weights:
            queries = embedding.encoders(Settings.from_env({"second_encoder": "e5", "second_weight": weight}))[1]
            engine = Engine(joined, encoder=records, query_encoder=queries)
            print(row(f"+ e5 at {weight:g}", figures(engine, judgements)), flush=True)
            if args.latency and weight == args.weights[0]:  # the weight does not change the work
                print(latency(engine, timing), flush=True)
            engine.close()


if __name__ == "__main__":
    main()
