"""Stored plans: the verbs the API and the CLI share (create, read, list, replace, delete), turning a plan's rows
into activations, and the CSV export.

A plan is computed once (``matcher.planner``) and stored as made, with its request; reading it adds what changed
since: the status of the activations it created, and without the people who opted out or were deleted since.
Plan writes count no version: no answer and no fatigue depends on them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, ValidationError

from matcher.config import PACKAGE_DIR, Settings
from matcher.errors import ConflictError, InvalidRequestError, NotFoundError
from matcher.planner import Planner, PlanRequest, load_rules
from matcher.store import now_iso, select_in
from models.plan_schemas import PlanActivationsRequestSchema, PlanEditsRequestSchema, PlanRequestSchema

if TYPE_CHECKING:
    from matcher.service import Engine

RULES_NAME = "activation_rules.json"
CSV_COLUMNS = tuple(
    "moment category rank role id name networks followers score suggested_type reason fatigue fatigue_reason "
    "response_rate activation_rate diversity edited activation_id activation_status".split()
)
REQUEST, ACTIVATIONS, EDITS = PlanRequestSchema(), PlanActivationsRequestSchema(), PlanEditsRequestSchema()


def rules_file(settings: Settings) -> Path:
    """The planning rules beside the moments file (a brand's own moments name their own), else the package's."""
    beside = Path(settings.moments_file).parent / RULES_NAME
    return beside if beside.exists() else PACKAGE_DIR / "data" / RULES_NAME


class Plans:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.store = engine.store
        self.planner = Planner(engine, load_rules(rules_file(engine.settings), engine.moments))

    # -- the plans ------------------------------------------------------------------------------

    def create(self, data: Any, *, save: bool = True) -> dict[str, Any]:
        """Plan for a request and store the plan (``save`` False: only compute it); 400 with every problem."""
        request = self.request(data)
        stamp = now_iso()
        record = {
            "id": f"pln-{uuid.uuid4().hex[:12]}",
            "campaign_id": request.campaign,
            "request": json.dumps(request.as_dict(), ensure_ascii=False),
            "body": json.dumps(self._compute(request), ensure_ascii=False),
            "activations": "[]",
            "created_at": stamp,
            "updated_at": stamp,
        }
        if save:
            with self.store.transaction(bump=False) as db:
                db["plans"].insert(record)
        return self._view(record)

    def get(self, plan_id: str) -> dict[str, Any]:
        """A plan as made, with its activations' statuses now, and without anyone who opted out since."""
        return self._view(self._record(plan_id))

    def list_plans(self) -> list[dict[str, Any]]:
        """Every plan, the latest first, summarised."""
        out = []
        for record in self.store.db.query("SELECT * FROM plans ORDER BY created_at DESC, id"):
            request, body = json.loads(record["request"]), json.loads(record["body"])
            out.append(
                {
                    "id": record["id"],
                    "campaign": record["campaign_id"],
                    "brief": request["brief"],
                    "products": request["products"],
                    "moments": request["moments"],
                    "shortlisted": sum(1 for _ in _proposed(body["moments"], ("shortlist",))),
                    "activations": len(json.loads(record["activations"])),
                    "created_at": record["created_at"],
                    "updated_at": record["updated_at"],
                }
            )
        return out

    def replace(self, plan_id: str, data: Any) -> dict[str, Any]:
        """Plan again for a new request under the same id; the activations it created stay tracked."""
        self._record(plan_id)  # 404 before the work
        request = self.request(data)
        body = json.dumps(self._compute(request), ensure_ascii=False)
        changes = {
            "campaign_id": request.campaign,
            "request": json.dumps(request.as_dict(), ensure_ascii=False),
            "body": body,
            "updated_at": now_iso(),
        }
        with self.store.transaction(bump=False) as db:
            if db.execute("SELECT 1 FROM plans WHERE id = ?", [plan_id]).fetchone() is None:
                raise NotFoundError(f"No plan {plan_id!r}: it was deleted meanwhile.")
            db["plans"].update(plan_id, changes)
        return self.get(plan_id)

    def edit(self, plan_id: str, data: Any) -> dict[str, Any]:
        """A planner's edits to a plan's lists, applied in order, all or none: move someone between a shortlist and
        its alternates (``to`` shortlist or alternates, at ``position`` or last), drop them (``to`` dropped: listed
        among the skipped, and excluded if the plan is made again), or add someone the plan does not hold at that
        moment. A person stays once per plan; an added person must be contactable; after the edits no shortlist
        may hold more than its budget (a swap is two edits in one call)."""
        edits = _load(EDITS, data)["edits"]
        record = self._record(plan_id)
        # The request as stored (checked when the plan was made; its campaign may have gone since): the brief.
        stored_request = json.loads(record["request"])
        request = PlanRequest(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored_request.items()})
        # Rows of the people an edit adds, computed before the write (it ranks them for the brief).
        stored_moments = json.loads(record["body"])["moments"]
        held = {(m["moment"], r["id"]) for m, _, r in _proposed(stored_moments)}
        planned = {m["moment"] for m in stored_moments}
        rows = {
            (item["moment"], item["influencer"]): self._addable(request, item, number)
            for number, item in enumerate(edits)
            if item["to"] != "dropped"
            and item["moment"] in planned
            and (item["moment"], item["influencer"]) not in held
        }
        with self.store.transaction(bump=False) as db:
            found = db.execute("SELECT body, request FROM plans WHERE id = ?", [plan_id]).fetchone()
            if found is None:
                raise NotFoundError(f"No plan {plan_id!r}: it was deleted meanwhile.")
            body, stored = json.loads(found[0]), json.loads(found[1])
            for number, item in enumerate(edits):
                _apply(body["moments"], item, rows, f"edits.{number}", stored)
            over = [
                f"{m['moment']}/{b['category']}: {len(b['shortlist'])} for a budget of {b['budget']}"
                for m in body["moments"]
                for b in m["categories"]
                if len(b["shortlist"]) > b["budget"]
            ]
            if over:
                raise ConflictError(
                    f"A shortlist would hold more than its budget ({'; '.join(over)}): move someone to the "
                    "alternates in the same call, or plan again with a larger budget. Nothing was changed."
                )
            changes = {"body": json.dumps(body, ensure_ascii=False), "request": json.dumps(stored, ensure_ascii=False)}
            db["plans"].update(plan_id, {**changes, "updated_at": now_iso()})
        return self.get(plan_id)

    def _addable(self, request: PlanRequest, item: dict[str, Any], number: int) -> dict[str, Any]:
        """The row of someone to add at a moment, or the reason they may not be added."""
        field = f"edits.{number}.influencer"
        row = self.planner.row_for(request, item["moment"], item["influencer"])
        if row is None:
            raise InvalidRequestError(
                f"No influencer {item['influencer']!r} to add (unknown, opted out or deleted).",
                {field: ["Not found: an id from GET /v1/influencers?q=…"]},
            )
        if row["fatigue"]["value"] <= 0:
            raise ConflictError(
                f"{row['name']} may not be contacted now: {row['fatigue']['reason']}. Nothing was changed."
            )
        return row

    def delete(self, plan_id: str) -> dict[str, Any]:
        """Forget a plan; the activations it created stay (they are records of their own)."""
        with self.store.transaction(bump=False) as db:
            if not db.execute("DELETE FROM plans WHERE id = ?", [plan_id]).rowcount:
                raise NotFoundError(f"No plan {plan_id!r}.")
        return {"id": plan_id, "deleted": True}

    def request(self, data: Any) -> PlanRequest:
        """A request checked (shape, then meaning: campaign, products, brief, moments, budget), defaults filled."""
        fields = _load(REQUEST, data)
        problems: dict[str, list[str]] = {}
        campaign: dict[str, Any] = {}
        if fields["campaign"] is not None:
            try:
                campaign = self.engine.planning.get_campaign(fields["campaign"])
            except NotFoundError:
                problems["campaign"] = [f"No campaign {fields['campaign']!r}: create it first, or leave it out."]
        products = tuple(dict.fromkeys(fields["products"] or campaign.get("products", [])))
        brief = fields["brief"].strip() or campaign.get("brief", "").strip()
        if not products:
            problems["products"] = ["Required: the products the plan is for (or a campaign that has some)."]
        if not brief:
            problems["brief"] = ["Required: a few words on the campaign (or a campaign that has a brief)."]
        known = list(self.engine.moments)
        moments = tuple(dict.fromkeys(fields.get("moments") or known))
        unknown = [m for m in moments if m not in self.engine.moments]
        if unknown:
            problems["moments"] = [f"Unknown moment {unknown[0]!r}: must be among {', '.join(known)}."]
        budget = {**self.planner.rules["budget"], **fields["budget"]}
        if not any(budget.values()):
            problems["budget"] = ["At least one category needs a budget above 0."]
        if problems:
            raise InvalidRequestError("The plan request is invalid; see fields. Nothing was stored.", problems)
        alternates = fields["alternates"]
        return PlanRequest(
            campaign=fields["campaign"],
            products=products,
            brief=brief,
            moments=moments,
            budget=budget,
            languages=tuple(dict.fromkeys(v.casefold() for v in fields["languages"])),
            networks=tuple(dict.fromkeys(v.casefold() for v in fields["networks"])),
            min_followers=fields["min_followers"],
            max_followers=fields["max_followers"],
            starts_on=fields["starts_on"] or campaign.get("starts_on"),
            ends_on=fields["ends_on"] or campaign.get("ends_on"),
            alternates=self.planner.rules["alternates"] if alternates is None else alternates,
            exclude=tuple(dict.fromkeys(fields["exclude"])),
            product_authors_only=fields["product_authors_only"],
        )

    def _compute(self, request: PlanRequest) -> dict[str, Any]:
        return {"rules": self.planner.describe(), "moments": self.planner.plan(request)}

    def _record(self, plan_id: str) -> dict[str, Any]:
        found = next(self.store.db.query("SELECT * FROM plans WHERE id = ?", [plan_id]), None)
        if found is None:
            raise NotFoundError(f"No plan {plan_id!r}.")
        return found

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        """A stored plan as answered: activations with their status now; without the people gone since."""
        body = json.loads(record["body"])
        tracked = self._tracked(json.loads(record["activations"]))
        by_row = {(t["moment"], t["influencer_id"]): t for t in tracked}
        gone = self._gone(body["moments"])
        withdrawn: set[str] = set()
        for moment in body["moments"]:
            for block in moment["categories"]:
                for role in ("shortlist", "alternates"):
                    rows = [r for r in block[role] if r["id"] not in gone]
                    withdrawn |= {r["id"] for r in block[role]} - {r["id"] for r in rows}
                    for rank, row in enumerate(rows, start=1):
                        row["rank"], row["activation"] = rank, by_row.get((moment["moment"], row["id"]))
                        row.setdefault("edited", None)  # plans stored before edits existed
                    block[role] = rows
                block["skipped"] = [s for s in block["skipped"] if s["id"] not in gone]
                block["missing"] = block["budget"] - len(block["shortlist"])
            moment["content"] = [c for c in moment["content"] if (c["influencer"] or {}).get("id") not in gone]
        return {
            "id": record["id"],
            "campaign": record["campaign_id"],
            "request": json.loads(record["request"]),
            "rules": body["rules"],
            "moments": body["moments"],
            "activations": tracked,
            "withdrawn": len(withdrawn),
            "created_at": record["created_at"],
            "updated_at": record["updated_at"],
        }

    def _gone(self, moments: list[dict[str, Any]]) -> set[str]:
        """The people a plan names (rows, skipped, authors) who opted out or were deleted since."""
        named = {r["id"] for _, _, r in _proposed(moments, ("shortlist", "alternates", "skipped"))}
        named |= {c["influencer"]["id"] for m in moments for c in m["content"] if c["influencer"]}
        present = self.store.influencer_rows_by_id(named)
        return {i for i in named if i not in present or present[i]["opted_out"]}

    def _tracked(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The activations a plan created, each with its status now ('deleted' if it was since)."""
        sql = "SELECT id, status FROM activations WHERE id IN ({marks})"
        statuses = dict(select_in(self.store.db, sql, [t["id"] for t in items]))
        return [{**t, "status": statuses.get(t["id"], "deleted")} for t in items]

    # -- from a plan to activations -------------------------------------------------------------

    def create_activations(self, plan_id: str, data: Any = None) -> dict[str, Any]:
        """Proposed activations for the plan's shortlisted rows (or the people named, shortlist or alternates), of
        the suggested type, for its campaign and dates. A row that has one from this plan is not given another:
        ids are derived from the plan and the row, so a repeated or concurrent call makes each only once."""
        fields = _load(ACTIVATIONS, {} if data is None else data)
        plan = self.get(plan_id)
        rows = {r["id"]: (m["moment"], r) for m, _, r in _proposed(plan["moments"])}
        if "influencers" in fields:
            stored = json.loads(self._record(plan_id)["body"])["moments"]
            once_in = {r["id"] for _, _, r in _proposed(stored)}  # those withdrawn since included
            strangers = [i for i in fields["influencers"] if i not in once_in]
            if strangers:
                raise InvalidRequestError(
                    f"{strangers[0]!r} is not in plan {plan_id}: choose among its shortlists and alternates.",
                    {"influencers": [f"Not in this plan: {', '.join(map(repr, strangers))}."]},
                )
            wanted = list(dict.fromkeys(fields["influencers"]))
        else:
            wanted = [i for i, (_, row) in rows.items() if row["role"] == "shortlist"]
        if plan["campaign"] is not None:
            try:
                self.engine.planning.get_campaign(plan["campaign"])
            except NotFoundError as e:
                raise ConflictError(
                    f"The plan's campaign {plan['campaign']!r} no longer exists: PUT the plan with another one."
                ) from e
        request = plan["request"]
        created, existing, refused = [], [], []
        for influencer in wanted:
            if influencer not in rows:
                refused.append({"influencer_id": influencer, "reason": "opted out or deleted since the plan was made"})
                continue
            moment, row = rows[influencer]
            if row["activation"] is not None:
                existing.append(row["activation"])
                continue
            item = {
                "id": _activation_id(plan_id, moment, influencer),
                "moment": moment,
                "influencer_id": influencer,
                "type": row["suggested"]["type"],
            }
            try:
                self.engine.planning.create_activation(
                    {
                        **item,
                        "campaign_id": plan["campaign"],
                        "status": "proposed",
                        "starts_on": request["starts_on"],
                        "ends_on": request["ends_on"],
                        "notes": f"From plan {plan_id}: {row['suggested']['reason']}",
                    }
                )
                created.append({**item, "status": "proposed"})
            except ConflictError:  # made by a call running at the same time
                existing.append({**item, "status": "proposed"})
            except InvalidRequestError as e:  # deleted a moment ago
                refused.append({"influencer_id": influencer, "reason": e.message})
        self._track(plan_id, [*created, *existing])
        return {
            "plan": plan_id,
            "created": created,
            "existing": existing,
            "not_created": refused,
            "activations": self.get(plan_id)["activations"],
        }

    def _track(self, plan_id: str, items: list[dict[str, Any]]) -> None:
        """Add these activations to those the plan tracks (each once)."""
        with self.store.transaction(bump=False) as db:
            found = db.execute("SELECT activations FROM plans WHERE id = ?", [plan_id]).fetchone()
            if found is None:
                raise NotFoundError(f"No plan {plan_id!r}: it was deleted meanwhile.")
            tracked = json.loads(found[0])
            known = {t["id"] for t in tracked}
            fields = ("id", "moment", "influencer_id", "type")
            tracked += [{k: t[k] for k in fields} for t in items if t["id"] not in known]
            db["plans"].update(plan_id, {"activations": json.dumps(tracked), "updated_at": now_iso()})

    # -- exports --------------------------------------------------------------------------------

    def csv_text(self, plan_id: str) -> str:
        """The plan as CSV: one line per person proposed (shortlist, then alternates), per moment and category."""
        return plan_csv(self.get(plan_id))


def plan_csv(plan: dict[str, Any]) -> str:
    """A plan (as ``Plans.get`` gives it) as CSV, with a header; lists joined by '|'."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in plan_rows(plan):
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text that starts like a formula gets a leading apostrophe (OWASP's
    advice against CSV injection: a name such as '=HYPERLINK(…)' comes from records anyone may import)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def plan_rows(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat dict per person proposed, with the CSV's columns (what the CLI's table shows too)."""
    out = []
    for moment, block, row in _proposed(plan["moments"]):
        past, activation = row["suggested"]["past"], row["activation"] or {}
        out.append(
            {
                "moment": moment["moment"],
                "category": block["category"],
                **{k: row[k] for k in ("rank", "role", "id", "name")},
                "networks": "|".join(row["networks"]),
                "followers": row["followers"],
                "score": row["score"],
                "suggested_type": row["suggested"]["type"],
                "reason": row["suggested"]["reason"],
                "fatigue": row["fatigue"]["value"],
                "fatigue_reason": row["fatigue"]["reason"],
                "response_rate": past["response_rate"],
                "activation_rate": past["activation_rate"],
                "diversity": row["diversity"],
                "edited": row["edited"],
                "activation_id": activation.get("id"),
                "activation_status": activation.get("status"),
            }
        )
    return out


def _proposed(
    moments: list[dict[str, Any]], roles: tuple[str, ...] = ("shortlist", "alternates")
) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(moment, category block, row) of every row of these roles, moment by moment, shortlists first."""
    for moment in moments:
        for block in moment["categories"]:
            for role in roles:
                for row in block[role]:
                    yield moment, block, row


def _activation_id(plan_id: str, moment: str, influencer_id: str) -> str:
    """The same for the same plan and row, whoever asks: what keeps a repeated call from making two."""
    digest = hashlib.sha256(f"{plan_id}\n{moment}\n{influencer_id}".encode()).hexdigest()[:10]
    return f"act-{plan_id.removeprefix('pln-')}-{digest}"


def _find(moment: dict[str, Any], item: dict[str, Any]) -> tuple[dict[str, Any], str, int] | None:
    """Where a person is in a moment of a plan: (category block, list, index), or None."""
    for block in moment["categories"]:
        for role in ("shortlist", "alternates"):
            for i, row in enumerate(block[role]):
                if row["id"] == item["influencer"]:
                    return block, role, i
    return None


def _apply(
    moments: list[dict[str, Any]],
    item: dict[str, Any],
    rows: dict[tuple[str, str], dict[str, Any]],
    where: str,
    request: dict[str, Any],
) -> None:
    """One edit applied to a plan's moments (and its stored request's exclusions), or the error that stops all.
    ``rows``: the rows of people to add, by (moment, id); those an edit drops join them (to be added back)."""
    by_name = {m["moment"]: m for m in moments}
    moment, person, to = by_name.get(item["moment"]), item["influencer"], item["to"]
    if moment is None:
        raise InvalidRequestError(
            f"The plan has no moment {item['moment']!r}.", {f"{where}.moment": [f"Among: {', '.join(by_name)}."]}
        )
    place = _find(moment, item)
    elsewhere = [m["moment"] for m in moments if m is not moment and _find(m, item)]
    if elsewhere:
        raise ConflictError(
            f"{person!r} is in the plan for {elsewhere[0]}: a person appears once per plan; drop them there first."
        )
    if place is None and to == "dropped":
        raise InvalidRequestError(
            f"{person!r} is not in the plan at {item['moment']}.", {f"{where}.influencer": ["Not at this moment."]}
        )
    if place is None:
        row = rows.get((item["moment"], person))  # computed before the write, or dropped by an earlier edit
        if row is None:  # they were in the plan when it was read, and another call moved them since
            raise ConflictError("The plan changed while these edits were prepared: read it again, then edit.")
        block = next((b for b in moment["categories"] if b["category"] == row["category"]), None)
        if block is None:
            raise InvalidRequestError(
                f"The plan has no {row['category']} list at {item['moment']}: plan again with a budget for it.",
                {f"{where}.influencer": [f"A {row['category']}: this plan has no list for the category."]},
            )
        block["skipped"] = [s for s in block["skipped"] if s["id"] != person]
        if person in request["exclude"]:
            request["exclude"].remove(person)
        row = {**row, "edited": "added by a planner"}
    else:
        block, role, index = place
        row = block[role].pop(index)
        if to == "dropped":
            reason = "dropped by a planner"
            block["skipped"].append({"id": person, "name": row["name"], "score": row["score"], "reason": reason})
            request["exclude"] = [*dict.fromkeys([*request["exclude"], person])]
            rows[item["moment"], person] = row
            return
        if role != to:
            row["edited"] = f"moved to the {'shortlist' if to == 'shortlist' else 'alternates'} by a planner"
    target = block[to]
    position = min(item.get("position") or len(target) + 1, len(target) + 1)
    row["role"] = "shortlist" if to == "shortlist" else "alternate"
    target.insert(position - 1, row)


def _load(schema: Schema, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidRequestError("The body must be a JSON object.", {"_schema": ["Must be a JSON object."]})
    try:
        return schema.load(data)
    except ValidationError as e:
        raise InvalidRequestError("The request is invalid; see fields. Nothing was stored.", e.messages) from e
