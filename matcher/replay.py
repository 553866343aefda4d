"""Proof that the loop learns: simulated customers with a hidden truth, served by the real engine.

Each session is a widget at one moment showing ``limit`` pieces of content. Customers examine slot r with the
probability ``EXAMINATION[r]`` (the ULTRA toolbox's) and click an examined piece with its hidden probability at
that moment, drawn from the piece's fit to the moment (its static score) plus a preference of its own that the
static ranking cannot see: the static ranking is a sensible start but not the best. Three rankings serve the
same number of sessions: the static one (nothing learned), the learned one (the engine with its engagement part,
exploring the lower slots, fed every event through ``Engine.record_events``), and an oracle that knows the truth.
Midway the hidden preferences change, and the learned ranking must follow.

Then an off-policy check: the static ranking with every slot explored logs its own sessions with propensities;
the self-normalised inverse-propensity estimate of the final learned ranking from those logs is set beside its
true click rate, which the simulation knows.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from matcher.config import Settings
from matcher.ranking import Policy
from matcher.store import copy_data_dir

# Examination probability of slots 1..10 (ULTRA's position-based click model simulation).
EXAMINATION = np.array([0.68, 0.61, 0.48, 0.34, 0.28, 0.20, 0.11, 0.10, 0.08, 0.06])
DAY = 86_400.0


@dataclass
class Truth:
    """Hidden click and conversion probabilities per (moment, content id)."""

    fit: dict[str, dict[str, float]]  # the static score of every candidate, standardised per moment
    clicks: dict[str, dict[str, float]] = field(default_factory=dict)
    converts: dict[str, dict[str, float]] = field(default_factory=dict)

    def draw(self, rng: np.random.Generator, spread: float, weight: float) -> None:
        """New hidden preferences: the click probability is a logistic of fit and of a preference nobody sees."""
        for moment, fits in self.fit.items():
            ids = sorted(fits)
            z = np.array([fits[i] for i in ids])
            own = rng.normal(0.0, spread, len(ids))
            p = 1 / (1 + np.exp(-(-2.6 + weight * z + own)))
            self.clicks[moment] = dict(zip(ids, p.tolist(), strict=True))
            self.converts[moment] = dict(zip(ids, (0.05 + 0.25 * rng.random(len(ids))).tolist(), strict=True))

    def best(self, moment: str, limit: int) -> list[str]:
        return sorted(self.clicks[moment], key=lambda i: -self.clicks[moment][i])[:limit]

    def expected_ctr(self, moment: str, shown: list[str]) -> float:
        """Expected clicks per impression of a ranking at a moment."""
        p = self.clicks[moment]
        return float(sum(EXAMINATION[r] * p.get(i, 0.0) for r, i in enumerate(shown)) / len(shown))


def replay(
    data_dir: Path,
    *,
    sessions: int = 20_000,
    rounds: int = 20,
    seed: int = 7,
    limit: int = 10,
    shift_at: float = 0.5,
    sessions_per_day: int = 2000,
    products: str | None = "homelive",
    spread: float = 1.2,
    fit_weight: float = 0.6,
    progress: Callable[[str], None] | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Run the simulation on copies of ``data_dir`` (never written), with ``settings``' scoring and moments
    files; every figure in the returned dict."""
    from matcher.service import Engine  # the engine imports this package's modules: late

    work = Path(tempfile.mkdtemp(prefix="relais-replay-"))
    base = settings or Settings()
    learned = Engine(replace(base, data_dir=copy_data_dir(data_dir, work / "learned")))
    logged = Engine(replace(base, data_dir=copy_data_dir(data_dir, work / "logged")))
    try:
        filters = {"products": products} if products else {}
        moments = sorted(learned.moments)
        # Separate streams: the hidden truth, the customers, the exploration and the check draw independently,
        # so that a change of settings does not change the customers.
        truth_rng, rng, explore_rng, check_rng = (np.random.default_rng([seed, i]) for i in range(4))
        truth = Truth(_fits(learned, moments, filters, limit))
        truth.draw(truth_rng, spread, fit_weight)
        static = {
            m: _ids(learned.match(m, None, filters, limit, ["content"], policy=Policy(learned=False))) for m in moments
        }
        per_round = max(1, sessions // rounds)
        curves: list[dict[str, Any]] = []
        shifted = False
        clock = 1_800_000_000.0  # simulated seconds since the epoch
        n = 0
        for round_number in range(1, rounds + 1):
            if not shifted and n >= shift_at * sessions:
                truth.draw(truth_rng, spread, fit_weight)  # the customers change their minds
                shifted = True
            clicks = {"static": 0, "learned": 0, "oracle": 0}
            conversions = dict.fromkeys(clicks, 0)
            batch: list[dict[str, Any]] = []
            for _ in range(per_round):
                n += 1
                clock += DAY / sessions_per_day
                moment = moments[int(rng.integers(len(moments)))]
                request = f"replay-{seed}-{n}"
                result = learned.match(
                    moment,
                    None,
                    filters,
                    limit,
                    ["content"],
                    policy=Policy(explore=True, rng=explore_rng),
                    request_id=request,
                )
                shown = _ids(result)
                for name, ranking in (
                    ("learned", shown),
                    ("static", static[moment]),
                    ("oracle", truth.best(moment, limit)),
                ):
                    seen, clicked, converted = _session(rng, truth, moment, ranking)
                    clicks[name] += len(clicked)
                    conversions[name] += converted
                    if name == "learned":
                        batch += _events(request, moment, shown, seen, clicked, clock)
            for start in range(0, len(batch), 1000):
                learned.record_events(batch[start : start + 1000], key_id="replay")
            learned.learn()
            impressions = per_round * limit
            greedy = {m: _ids(learned.match(m, None, filters, limit, ["content"])) for m in moments}
            curves.append(
                {
                    "round": round_number,
                    "sessions": n,
                    "ctr": {k: v / impressions for k, v in clicks.items()},
                    "conversions_per_1000_sessions": {k: 1000 * v / per_round for k, v in conversions.items()},
                    "expected_ctr": {
                        "static": float(np.mean([truth.expected_ctr(m, static[m]) for m in moments])),
                        "learned": float(np.mean([truth.expected_ctr(m, greedy[m]) for m in moments])),
                        "oracle": float(np.mean([truth.expected_ctr(m, truth.best(m, limit)) for m in moments])),
                    },
                    "shifted": shifted,
                }
            )
            if progress:
                c = curves[-1]["ctr"]
                progress(
                    f"round {round_number}: {n} sessions, CTR static {c['static']:.4f} "
                    f"learned {c['learned']:.4f} oracle {c['oracle']:.4f}"
                )
        final = {m: _ids(learned.match(m, None, filters, limit, ["content"])) for m in moments}
        check = _off_policy(logged, truth, final, moments, filters, limit, sessions, check_rng)
        last = curves[-max(1, rounds // 10) :]  # the last tenth of the run: where it stands "after" the sessions
        ctr = {k: float(np.mean([c["ctr"][k] for c in last])) for k in ("static", "learned", "oracle")}
        return {
            "settings": {
                "sessions": sessions,
                "rounds": rounds,
                "seed": seed,
                "limit": limit,
                "shift_at": shift_at,
                "sessions_per_day": sessions_per_day,
                "products": products,
                "spread": spread,
                "fit_weight": fit_weight,
                "examination": EXAMINATION.tolist(),
                "half_life_days": learned.scoring["engagement"]["half_life_days"],
            },
            "rank_correlation_static_truth": _rank_correlation(truth, static, moments),
            "curves": curves,
            "final": {
                "ctr": ctr,
                "learned_over_static": ctr["learned"] / ctr["static"] if ctr["static"] else None,
                "learned_over_oracle": ctr["learned"] / ctr["oracle"] if ctr["oracle"] else None,
            },
            "off_policy": check,
        }
    finally:
        for engine in (learned, logged):
            engine.close()  # its background thread would find its store gone
        shutil.rmtree(work, ignore_errors=True)


def _session(rng: np.random.Generator, truth: Truth, moment: str, shown: list[str]) -> tuple[list[int], list[int], int]:
    """Slots shown (all of them: the widget renders every card), slots clicked, conversions."""
    examined = rng.random(len(shown)) < EXAMINATION[: len(shown)]
    p = np.array([truth.clicks[moment].get(i, 0.0) for i in shown])
    clicked = np.flatnonzero(examined & (rng.random(len(shown)) < p)).tolist()
    converted = sum(1 for r in clicked if rng.random() < truth.converts[moment].get(shown[r], 0.0))
    return list(range(len(shown))), clicked, converted


def _events(request: str, moment: str, shown: list[str], seen: list[int], clicked: list[int], at: float) -> list[dict]:
    base = {"request_id": request, "kind": "content", "moment": moment, "at": at, "value": None}
    out = [
        {**base, "event_id": f"{request}-i{r}", "type": "impression", "item_id": shown[r], "rank": r + 1} for r in seen
    ]
    out += [
        {**base, "event_id": f"{request}-c{r}", "type": "click", "item_id": shown[r], "rank": r + 1} for r in clicked
    ]
    return out


def _off_policy(
    engine: Any,
    truth: Truth,
    target: dict[str, list[str]],
    moments: list[str],
    filters: dict,
    limit: int,
    sessions: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """SNIPS, slot by slot (item-position model), of ``target`` from a static ranking explored on every slot."""
    engine.served_log = False
    weights = np.zeros((len(moments), limit))
    rewards = np.zeros((len(moments), limit))
    for _ in range(sessions):
        m = int(rng.integers(len(moments)))
        moment = moments[m]
        result = engine.match(
            moment,
            None,
            filters,
            limit,
            ["content"],
            policy=Policy(learned=False, explore=True, fixed_slots=0, rng=rng),
        )
        shown = _ids(result)
        _, clicked, _ = _session(rng, truth, moment, shown)
        for slot, (item, r) in enumerate(zip(shown, result.content, strict=True)):
            if slot < len(target[moment]) and item == target[moment][slot]:
                weights[m, slot] += 1 / r.propensity
                rewards[m, slot] += (slot in clicked) / r.propensity
    with np.errstate(invalid="ignore", divide="ignore"):
        per_slot = np.where(weights > 0, rewards / weights, np.nan)
    supported = float(np.mean(weights > 0))
    estimate = float(np.nanmean([np.nansum(per_slot[m]) / limit for m in range(len(moments))]))
    true = float(np.mean([truth.expected_ctr(m, target[m]) for m in moments]))
    return {
        "logging_sessions": sessions,
        "estimated_ctr": estimate,
        "true_ctr": true,
        "relative_error": abs(estimate - true) / true if true else None,
        "slots_supported": supported,
        "note": "A slot the log never showed the target's item in has no support and counts as no click.",
    }


def _fits(engine: Any, moments: list[str], filters: dict, limit: int) -> dict[str, dict[str, float]]:
    """Each moment's candidates for a page of ``limit`` (what the engine re-ranks: a piece beyond them cannot be
    shown, so it does not fit the moment and is never clicked) and their static scores, standardised."""
    from matcher.filters import Filters
    from matcher.retrieval import Target

    out = {}
    for moment in moments:
        relevance = engine.scoring["relevance"]
        target = Target(moment, None, None, (), relevance["query_weight"], relevance["moment_weight"])
        allowed = engine.catalogue.visible("content") & Filters.from_mapping(filters).content_mask(engine.catalogue)
        pool = engine.ranker.retriever.candidates("content", target, engine.ranker.pool_size(limit), allowed)
        ids = {row["id"] for row in engine.catalogue.rows("content", pool.keys).values()}
        ranked = engine.match(moment, None, filters, 100, ["content"], policy=Policy(learned=False)).content
        scores = {r.row["id"]: r.score for r in ranked if r.row["id"] in ids}
        floor = min(scores.values(), default=0.0)
        values = np.array([scores.get(i, floor) for i in sorted(ids)])
        z = (values - values.mean()) / (values.std() or 1.0)
        out[moment] = dict(zip(sorted(ids), z.tolist(), strict=True))
    return out


def _rank_correlation(truth: Truth, static: dict[str, list[str]], moments: list[str]) -> float:
    """Spearman correlation between the static score and the hidden click probability, over all candidates."""
    values = []
    for m in moments:
        ids = sorted(truth.fit[m])
        a = np.argsort(np.argsort([truth.fit[m][i] for i in ids]))
        b = np.argsort(np.argsort([truth.clicks[m][i] for i in ids]))
        values.append(float(np.corrcoef(a, b)[0, 1]))
    return float(np.mean(values))


def _ids(result: Any) -> list[str]:
    return [r.row["id"] for r in result.content]


def plot(report: dict[str, Any], path: Path) -> None:
    """The CTR curves of the three rankings over the sessions, the preference change marked: a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = report["curves"]
    x = [c["sessions"] for c in curves]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for name, style in (("oracle", "k--"), ("learned", "C0-"), ("static", "C3-")):
        ax.plot(x, [c["ctr"][name] for c in curves], style, label=name, linewidth=2)
    shift = next((c["sessions"] for c in curves if c["shifted"]), None)
    if shift:
        ax.axvline(shift - report["settings"]["sessions"] / report["settings"]["rounds"], color="grey", linestyle=":")
        ax.annotate(
            "hidden preferences change",
            (shift, ax.get_ylim()[0]),
            xytext=(5, 10),
            textcoords="offset points",
            color="grey",
        )
    ax.set_xlabel("sessions")
    ax.set_ylabel("click-through rate per impression")
    ax.set_title("matcher replay: static, learned and oracle rankings (simulated customers)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
