"""The moments file: read and checked at start, and the vectors that stand for each moment."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from marshmallow import ValidationError

from matcher.embedding import Encoder
from matcher.errors import ConfigError, UnknownMomentError
from models.moments import Moment, MomentFileSchema


def load_moments(path: Path) -> dict[str, Moment]:
    """Moments by name, from a JSON file in the shape of ``matcher/data/moments.json``."""
    return _read(path)["moments"]


def detection_settings(path: Path) -> tuple[Path | None, float]:
    """The detector's examples file (resolved beside the moments file) and its low-confidence threshold."""
    detection = _read(path)["detection"]
    examples = detection["examples_file"]
    return (Path(path).parent / examples if examples else None), detection["low_confidence_below"]


def _read(path: Path) -> dict:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"Cannot read the moments file {path}: {e}") from e
    try:
        return MomentFileSchema().load(raw)
    except ValidationError as e:
        raise ConfigError(f"The moments file {path} is invalid: {e.messages}") from e


@dataclass(frozen=True)
class MomentVectors:
    """``centroid``: what the moment is about; ``profile``: who carries it. Both unit vectors."""

    centroid: np.ndarray
    profile: np.ndarray


def moment_vectors(moments: dict[str, Moment], encoder: Encoder) -> dict[str, MomentVectors]:
    """Embed every moment's descriptions and examples (centroid) and its influencer profile."""
    out = {}
    for name, moment in moments.items():
        centroid = _mean_unit(encoder, tuple(moment.texts()))
        profile = _mean_unit(encoder, tuple(moment.influencer_profile.values()))
        out[name] = MomentVectors(centroid, profile)
    return out


@functools.lru_cache(maxsize=64)
def _mean_unit(encoder: Encoder, texts: tuple[str, ...]) -> np.ndarray:
    """The unit mean of ``texts``' vectors: once per encoder and texts in a process (every engine of a test suite
    or of the evaluation encoded the same moments again, ~1 s each)."""
    centroid = getattr(encoder, "centroid", None)  # a joined encoder's weighs its models (JoinedEncoder.centroid)
    vector = centroid(texts) if centroid is not None else _unit(encoder.encode(list(texts)).mean(axis=0))
    vector.setflags(write=False)
    return vector


def get_moment(moments: dict[str, Moment], name: str) -> Moment:
    try:
        return moments[name]
    except KeyError:
        raise UnknownMomentError(name, sorted(moments)) from None


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm else vector).astype(np.float32)
