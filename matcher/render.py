"""Results and records as plain JSON-ready dicts: what the API returns and ``matcher match --json`` prints."""

from __future__ import annotations

from typing import Any

from matcher.detection import Detection
from matcher.ranking import Ranked
from matcher.scoring import shorten
from matcher.service import MatchResult
from models.contract import ContentSchema, InfluencerSchema

EXCERPT = 280


def match_dict(result: MatchResult) -> dict[str, Any]:
    return {
        "moment": result.moment.name,
        "detection": None if result.detection is None else detection_dict(result.detection),
        "query": result.query,
        "filters": result.filters.as_dict(),
        "influencers": [influencer_result(r, rank) for rank, r in enumerate(result.influencers, start=1)],
        "content": [content_result(r, rank) for rank, r in enumerate(result.content, start=1)],
        "policy": result.policy,
    }


PUBLIC_CONTENT = ("id", "title", "excerpt", "url", "format", "language", "network", "published_at", "thumbnail")


def public_match_dict(full: dict[str, Any]) -> dict[str, Any]:
    """What a public web page may show of a match (widget keys): for content, its title, excerpt, link, format,
    network, date, thumbnail and its author's name; for influencers, their name and the links to their pieces. No
    bio, handles, audience, engagement, sentiment or score parts: those are the brand's planning data."""

    def piece(c: dict[str, Any]) -> dict[str, Any]:
        author = c["influencer"]
        return {
            **{k: c[k] for k in PUBLIC_CONTENT},
            "influencer": None if author is None else {"id": author["id"], "name": author["name"]},
            "rank": c["rank"],
            "propensity": c["propensity"],
        }

    def person(i: dict[str, Any]) -> dict[str, Any]:
        evidence = [{k: e[k] for k in ("id", "title", "format", "url")} for e in i["evidence"]]
        return {
            "id": i["id"],
            "name": i["name"],
            "rank": i["rank"],
            "propensity": i["propensity"],
            "evidence": evidence,
        }

    return {
        "moment": full["moment"],
        "detection": full["detection"],
        "query": full["query"],
        "filters": full["filters"],
        "influencers": [person(i) for i in full["influencers"]],
        "content": [piece(c) for c in full["content"]],
        "policy": full["policy"],
        "projection": "public",
    }


def detection_dict(detection: Detection, language: str | None = None) -> dict[str, Any]:
    """The detected moment; when unsure, a message says so and names the runner-up (or says that no word of the
    text tells a moment)."""
    message = None
    if detection.says_nothing:
        message = (
            f"Unsure of the moment: no word of the text tells one (results are for {detection.moment}). "
            "Ask the customer a question or send a moment."
        )
    elif detection.low_confidence:
        second = sorted(detection.scores.items(), key=lambda item: -item[1])[1]
        message = (
            f"Unsure of the moment ({detection.confidence:.2f}): results are for {detection.moment}, "
            f"{second[0]} is close ({second[1]:.2f}). Ask the customer a question or send a moment."
        )
    return {
        "moment": detection.moment,
        "confidence": round(detection.confidence, 4),
        "scores": detection.scores,
        "low_confidence": detection.low_confidence,
        "message": message,
        "language": language,
    }


def influencer_result(r: Ranked, rank: int) -> dict[str, Any]:
    row = r.row
    return {
        "id": row["id"],
        "name": row["name"],
        "category": row["category"],
        "language": row["language"],
        "country": row["country"],
        "bio": row["bio"],
        "topics": row["topics"],
        "platforms": row["platforms"],
        "followers": row["followers"],
        "engagement_rate": row["engagement_rate"],
        **_scored(r, rank),
        "evidence": [
            {
                "id": c["id"],
                "title": c["title"] or shorten(c["text"], 120),
                "format": c["format"],
                "url": c["url"],
                "relevance": round(relevance, 4),
            }
            for c, relevance in r.evidence
        ],
    }


def content_result(r: Ranked, rank: int) -> dict[str, Any]:
    row, author = r.row, r.author
    return {
        "id": row["id"],
        "title": row["title"],
        "excerpt": shorten(row["text"], EXCERPT),
        "url": row["url"],
        "format": row["format"],
        "language": row["language"],
        "network": row["network"],
        "published_at": row["published_at"],
        "topics": row["topics"],
        "products": row["products"],
        "sentiment": row["sentiment"],
        "engagement": row["engagement"],
        "thumbnail": _thumbnail(row["extra"]),
        "influencer": None
        if author is None
        else {
            "id": author["id"],
            "name": author["name"],
            "category": author["category"],
            "followers": author["followers"],
        },
        **_scored(r, rank),
    }


def influencer_record(found: dict[str, Any]) -> dict[str, Any]:
    """An influencer as in the data contract, plus what Relais derives from it."""
    record = found["record"]
    return {**InfluencerSchema().dump(record), "followers": record.followers, "content_count": found["content_count"]}


def content_record(found: dict[str, Any]) -> dict[str, Any]:
    """A piece of content as in the data contract, plus its network and a summary of its author."""
    author = found["author"]
    summary = None if author is None else {"id": author["id"], "name": author["name"], "category": author["category"]}
    return {**ContentSchema().dump(found["record"]), "network": found["network"], "influencer": summary}


def _scored(r: Ranked, rank: int) -> dict[str, Any]:
    return {
        "rank": rank,
        "propensity": round(r.propensity, 4),
        "score": round(r.score, 4),
        "score_parts": {
            name: {
                "value": round(p.value, 4),
                "weight": p.weight,
                "share": round(p.share, 4),
                "contribution": round(p.contribution, 4),
                "reason": p.reason,
            }
            for name, p in r.parts.items()
        },
        "explanation": r.explanation,
    }


def _thumbnail(extra: dict[str, Any]) -> str | None:
    """An image for the piece, when its record has one beyond the contract (``thumbnail`` or ``image``)."""
    value = extra.get("thumbnail") or extra.get("image")
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None
