"""Domain records, as the rest of Relais sees them once the data contract has validated them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

CATEGORIES = ("statutory", "partner", "affinity", "customer")
FORMATS = (
    "article",
    "blog_post",
    "tweet",
    "instagram_post",
    "video",
    "infographic",
    "testimonial",
    "comparison_test",
    "tutorial",
    "review",
)


@dataclass(frozen=True)
class Platform:
    network: str
    handle: str
    followers: int
    engagement_rate: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Influencer:
    id: str
    name: str
    category: str
    platforms: list[Platform]
    bio: str = ""
    topics: list[str] = field(default_factory=list)
    language: str | None = None
    country: str | None = None
    opted_out: bool = False
    is_customer: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def followers(self) -> int:
        """Audience size: the largest platform (followers of several networks overlap, so no sum)."""
        return max((p.followers for p in self.platforms), default=0)

    @property
    def engagement_rate(self) -> float | None:
        """Engagement rate of the platforms that report one, weighted by their followers."""
        rated = [p for p in self.platforms if p.engagement_rate is not None]
        if not rated:
            return None
        total = sum(p.followers for p in rated)
        if total == 0:
            return sum(p.engagement_rate for p in rated) / len(rated)
        return sum(p.engagement_rate * p.followers for p in rated) / total

    @property
    def networks(self) -> list[str]:
        return sorted({p.network for p in self.platforms})


@dataclass(frozen=True)
class Engagement:
    likes: int | None = None
    shares: int | None = None
    comments: int | None = None
    views: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def interactions(self) -> int:
        """Likes, shares and comments: the reactions that take more than a glance."""
        return (self.likes or 0) + (self.shares or 0) + (self.comments or 0)


@dataclass
class Content:
    id: str
    format: str
    published_at: datetime
    influencer_id: str | None = None
    title: str = ""
    text: str = ""
    url: str | None = None
    language: str | None = None
    topics: list[str] = field(default_factory=list)
    engagement: Engagement | None = None
    sentiment: float | None = None
    products: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
