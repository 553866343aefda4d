"""Would two encoders together rank better than either? MiniLM (served) and multilingual-e5-small, each in its own
engine over the same data, and their final rankings fused by reciprocal rank (weight w on e5's). Prints nDCG@10
per evaluation set: overall, influencers, content, and content's English-minus-French gap.

    python bench/encoder_ensemble.py                    # every set of eval/sets.json whose files are here
    python bench/encoder_ensemble.py --set velonia

Each set is loaded twice into --work (default .cache/bench-ensemble; kept between runs): e5 encodes records slowly
(`python bench/encoders.py`), so the first run takes minutes per thousand records. The fusion here is of two whole
rankings (a prototype of fusing two dense similarities inside one engine), over each engine's first 60 results:
asking for 60 widens the candidate pool, so the served row differs a little from `matcher eval`'s (which asks for 10).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from matcher import evaluation  # noqa: E402
from matcher.config import PROJECT_DIR, Settings  # noqa: E402
from matcher.service import Engine  # noqa: E402

E5 = {"model": "multilingual-e5-small", "encoder": "e5", "query_encoder": "e5-query"}
WEIGHTS = (0.3, 0.5, 0.7)  # e5's share of the fused ranking
RRF_K = 60
DEPTH = 60


def engine(data_dir: Path, files: tuple[Path, ...], overrides: dict[str, str]) -> Engine:
    """An engine on ``data_dir``, loaded with ``files`` first if it is empty."""
    if not (data_dir / "relais.db").exists():
        started = time.perf_counter()
        loader = Engine(Settings.from_env({"data_dir": data_dir, **overrides}))
        loader.load(files)
        loader.close()
        print(f"  loaded {data_dir.name} in {time.perf_counter() - started:.0f} s", flush=True)
    out = Engine(Settings.from_env({"data_dir": data_dir, **overrides}))
    out.served_log = False
    return out


def fused(first: list[str], second: list[str], w: float) -> list[str]:
    score: dict[str, float] = {}
    for share, ranking in ((1 - w, first), (w, second)):
        for rank, item in enumerate(ranking):
            score[item] = score.get(item, 0.0) + share / (RRF_K + rank + 1)
    return sorted(score, key=lambda item: -score[item])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", help="an evaluation set of eval/sets.json (default: all here)")
    parser.add_argument("--work", type=Path, default=PROJECT_DIR / ".cache" / "bench-ensemble")
    args = parser.parse_args()
    systems = ["minilm (served)", "e5", *(f"rrf, e5 at {w}" for w in WEIGHTS)]
    print(f"nDCG@10{'':21}{'overall':>8}{'infl':>7}{'content':>8}{'en-fr':>7}")
    for name, s in evaluation.load_sets().items():
        if (args.set and name not in args.set) or s.judgements is None:
            continue
        if not all(Path(f).exists() for f in [*s.load, s.judgements]):
            continue
        print(f"== {name}{'' if s.tuned else ' (unseen: nothing was tuned on it)'}", flush=True)
        minilm = engine(args.work / name, s.load, {})
        e5 = engine(args.work / f"{name}-e5", s.load, E5)
        judgements = evaluation.load_judgements(s.judgements)
        kind_of = evaluation._kinds(minilm, judgements)
        found: dict[str, dict[str, list[tuple[str, float]]]] = {n: {k: [] for k in evaluation.KINDS} for n in systems}
        for j in judgements:
            answers = [e.match(j.moment, j.query, limit=DEPTH) for e in (minilm, e5)]
            for kind in evaluation.KINDS:
                relevant = {i: g for i, g in j.relevant.items() if kind_of.get(i) == kind}
                if not relevant:
                    continue
                a, b = ([r.row["id"] for r in getattr(answer, kind)] for answer in answers)
                rankings = [a, b, *(fused(a, b, w) for w in WEIGHTS)]
                for system, ranking in zip(systems, rankings, strict=True):
                    found[system][kind].append((j.language, evaluation.ndcg_at(ranking, relevant, 10)))
        for system in systems:
            per = found[system]
            n = sum(len(v) for v in per.values())
            overall = sum(x for v in per.values() for _, x in v) / n
            infl, content = (np.mean([x for _, x in per[k]]) for k in ("influencers", "content"))
            en, fr = (np.mean([x for lang, x in per["content"] if lang == code] or [np.nan]) for code in ("en", "fr"))
            print(f"{system:28}{overall:8.3f}{infl:7.3f}{content:8.3f}{en - fr:+7.3f}", flush=True)
        minilm.close()
        e5.close()


if __name__ == "__main__":
    main()
