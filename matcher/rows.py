"""Records as rows and back: the columns a record is stored in, and the hash that tells an edit from a repeat."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from models.records import Content, Engagement, Influencer, Platform

JSON_COLUMNS = ("topics", "platforms", "networks", "extra", "engagement", "products")


def influencer_row(influencer: Influencer) -> dict[str, Any]:
    return {
        "id": influencer.id,
        "name": influencer.name,
        "bio": influencer.bio,
        "topics": _json(influencer.topics),
        "category": influencer.category,
        "language": influencer.language,
        "country": influencer.country,
        "platforms": _json([_platform_dict(p) for p in influencer.platforms]),
        "followers": influencer.followers,
        "engagement_rate": influencer.engagement_rate,
        "networks": _json(influencer.networks),
        "opted_out": int(influencer.opted_out),
        "is_customer": int(influencer.is_customer),
        "extra": _json(influencer.extra),
    }


def content_row(content: Content) -> dict[str, Any]:
    engagement = None
    if content.engagement is not None:
        e = content.engagement
        engagement = _json({"likes": e.likes, "shares": e.shares, "comments": e.comments, "views": e.views, **e.extra})
    return {
        "id": content.id,
        "influencer_id": content.influencer_id,
        "title": content.title,
        "text": content.text,
        "url": content.url,
        "format": content.format,
        "language": content.language,
        "published_at": content.published_at.isoformat(),
        "published_ts": content.published_at.timestamp(),
        "topics": _json(content.topics),
        "engagement": engagement,
        "sentiment": content.sentiment,
        "products": _json(content.products),
        "extra": _json(content.extra),
    }


def decode_row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for column in JSON_COLUMNS:
        if column in out and out[column] is not None:
            out[column] = json.loads(out[column])
    for column in ("opted_out", "is_customer"):
        if column in out:
            out[column] = bool(out[column])
    return out


def influencer_from_row(row: dict[str, Any]) -> Influencer:
    platforms = [
        Platform(
            network=p["network"],
            handle=p.get("handle", ""),
            followers=p["followers"],
            engagement_rate=p.get("engagement_rate"),
            extra={k: v for k, v in p.items() if k not in ("network", "handle", "followers", "engagement_rate")},
        )
        for p in row["platforms"]
    ]
    return Influencer(
        id=row["id"],
        name=row["name"],
        category=row["category"],
        platforms=platforms,
        bio=row["bio"],
        topics=row["topics"],
        language=row["language"],
        country=row["country"],
        opted_out=row["opted_out"],
        is_customer=row["is_customer"],
        extra=row["extra"],
    )


def content_from_row(row: dict[str, Any]) -> Content:
    engagement = None
    if row["engagement"] is not None:
        e = dict(row["engagement"])
        engagement = Engagement(
            likes=e.pop("likes", None),
            shares=e.pop("shares", None),
            comments=e.pop("comments", None),
            views=e.pop("views", None),
            extra=e,
        )
    return Content(
        id=row["id"],
        format=row["format"],
        published_at=datetime.fromisoformat(row["published_at"]),
        influencer_id=row["influencer_id"],
        title=row["title"],
        text=row["text"],
        url=row["url"],
        language=row["language"],
        topics=row["topics"],
        engagement=engagement,
        sentiment=row["sentiment"],
        products=row["products"],
        extra=row["extra"],
    )


def _platform_dict(p: Platform) -> dict[str, Any]:
    return {
        "network": p.network,
        "handle": p.handle,
        "followers": p.followers,
        "engagement_rate": p.engagement_rate,
        **p.extra,
    }


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def record_hash(row: dict[str, Any]) -> str:
    """Same record, same hash, whatever the order of keys in its JSON columns."""
    decoded = {k: json.loads(v) if k in JSON_COLUMNS and v is not None else v for k, v in row.items()}
    return hashlib.sha256(json.dumps(decoded, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
