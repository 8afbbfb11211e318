"""A deterministic, instant stand-in for the embedding model in tests where the model isn't the point.

Bag of hashed words, L2-normalised: texts sharing words are similar. Real
tests of retrieval quality use the bundled e5 model instead.
"""

from __future__ import annotations

import hashlib
import math
import re


class FakeEmbedder:
    """Bag of hashed words, L2-normalised: texts sharing words are similar."""

    def __init__(self, model_id: str = "fake:a", dim: int = 64) -> None:
        self.model_id = model_id
        self.dim = dim
        self.passage_calls: list[int] = []

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        for word in re.findall(r"\w+", text.lower()):
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]

    def embed_passages(self, texts: list[str]) -> list[list[float]]:
        self.passage_calls.append(len(texts))
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)
