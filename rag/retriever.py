"""Hybrid retrieval over a knowledge-base collection: dense + BM25, fused by rank.

``Retriever.search`` takes the store's dense (embedding) top candidates and a
BM25 top candidates over the same chunks, merges them with weighted reciprocal
rank fusion, lets an optional ``Reranker`` reorder the fused list, and returns
the best ``k``. ``answerable`` applies the relevance threshold, below which the
caller should say there is no relevant passage.

It does not embed, store or split anything (the store does), and it does not
notice ingestion by itself: call ``invalidate`` after a collection changes so the
cached BM25 index is rebuilt on the next search.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from rag.bm25 import BM25Index

Mode = Literal["hybrid", "dense", "bm25"]

# Weight of the dense list in the fusion (BM25's is 1). Dense retrieval with E5
# is the stronger ranker on paraphrased questions, and the issue requires hybrid
# never to do worse than dense alone. With weight 2, a chunk that BM25 ranks first
# but dense misses scores 1/61 and cannot pass dense's own top chunk (2/61), so
# BM25 mostly breaks ties and lifts chunks dense ranked a little lower. Measured on
# rag/evalsets (python app.py kb eval): see rag/evalsets/README.md for the numbers.
DENSE_WEIGHT = 2.0
BM25_WEIGHT = 1.0


@dataclass
class Retrieved:
    """One retrieved chunk. ``score`` is what the ranking used: the fused RRF score
    in hybrid mode, the cosine in dense mode, the BM25 score in bm25 mode."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    score: float = 0.0
    dense_score: float | None = None
    bm25_score: float | None = None
    rank: int = 0


class Reranker(Protocol):
    """Reorders (and may trim) fused candidates, e.g. with a cross-encoder."""

    def rerank(self, query: str, hits: list[Retrieved]) -> list[Retrieved]: ...


class _Chunk(Protocol):
    # Read-only properties, so the store's dataclasses (with narrower types) match.
    @property
    def id(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def metadata(self) -> Mapping[str, Any]: ...


class _Hit(_Chunk, Protocol):
    @property
    def score(self) -> float: ...


class Store(Protocol):
    """The part of rag.store.KnowledgeStore the retriever uses."""

    def query(self, name: str, text: str, k: int) -> Sequence[_Hit]: ...

    def all_chunks(self, name: str) -> Sequence[_Chunk]: ...


@dataclass
class _Keyword:
    """A collection's BM25 index plus the chunks, to build hits BM25 alone found."""

    index: BM25Index
    chunks: dict[str, _Chunk]


def rrf(rankings: Sequence[Sequence[str]], weights: Sequence[float], k: int = 60) -> dict[str, float]:
    """Weighted reciprocal rank fusion: sum over lists of weight / (k + rank), rank from 1."""
    fused: dict[str, float] = {}
    for ids, weight in zip(rankings, weights, strict=True):
        for rank, chunk_id in enumerate(ids, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (k + rank)
    return fused


class Retriever:
    """Searches one store's collections; safe to share between threads."""

    def __init__(
        self,
        store: Store,
        *,
        threshold: float,
        rrf_k: int = 60,
        candidates: int = 20,
        reranker: Reranker | None = None,
        dense_weight: float = DENSE_WEIGHT,
    ) -> None:
        if candidates < 1 or rrf_k < 0:
            raise ValueError("candidates must be >= 1 and rrf_k >= 0")
        self.store = store
        self.threshold = threshold
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.reranker = reranker
        self.dense_weight = dense_weight
        self._keyword: dict[str, _Keyword] = {}
        self._lock = threading.Lock()

    def search(self, collection: str, query: str, k: int = 5, mode: Mode = "hybrid") -> list[Retrieved]:
        """The best ``k`` chunks for ``query``, ranked from 1."""
        if k < 1 or not query.strip():
            return []
        depth = max(k, self.candidates)
        if mode == "dense":
            hits = self._dense(collection, query, depth)
        elif mode == "bm25":
            hits = self._bm25(collection, query, depth)
        elif mode == "hybrid":
            hits = self._fuse(self._dense(collection, query, depth), self._bm25(collection, query, depth))
        else:
            raise ValueError(f"unknown mode {mode!r}")
        if self.reranker is not None and hits:
            hits = self.reranker.rerank(query, hits)
        return [replace(hit, rank=i) for i, hit in enumerate(hits[:k], start=1)]

    def answerable(self, hits: Sequence[Retrieved]) -> bool:
        """True when the best dense cosine among ``hits`` reaches the threshold.

        The threshold applies to the dense score because it is the only calibrated
        one: a cosine between normalised embeddings is bounded and comparable from
        one query and one collection to the next (for one model; E5's band still
        shifts with the language, see rag/evalsets/README.md). BM25 scores grow with
        query length and corpus statistics, and RRF scores depend only on ranks
        (something is always ranked first), so neither can tell "nothing relevant"
        apart from "weak match". Hits without a dense score (BM25 alone) do not count.
        """
        scores = [h.dense_score for h in hits if h.dense_score is not None]
        return bool(scores) and max(scores) >= self.threshold

    def invalidate(self, collection: str) -> None:
        """Forget the collection's BM25 index; the next search rebuilds it."""
        with self._lock:
            self._keyword.pop(collection, None)

    def _dense(self, collection: str, query: str, depth: int) -> list[Retrieved]:
        return [
            Retrieved(id=h.id, text=h.text, metadata=dict(h.metadata), score=h.score, dense_score=h.score)
            for h in self.store.query(collection, query, depth)
        ]

    def _bm25(self, collection: str, query: str, depth: int) -> list[Retrieved]:
        keyword = self._keyword_index(collection)
        hits = []
        for chunk_id, score in keyword.index.search(query, depth):
            chunk = keyword.chunks[chunk_id]
            hits.append(
                Retrieved(id=chunk.id, text=chunk.text, metadata=dict(chunk.metadata), score=score, bm25_score=score)
            )
        return hits

    def _keyword_index(self, collection: str) -> _Keyword:
        # One lock for all collections: builds are rare (after ingestion) and the
        # lock keeps two threads from building the same index at once.
        with self._lock:
            cached = self._keyword.get(collection)
            if cached is None:
                chunks = list(self.store.all_chunks(collection))
                cached = _Keyword(index=BM25Index(chunks), chunks={c.id: c for c in chunks})
                self._keyword[collection] = cached
            return cached

    def _fuse(self, dense: list[Retrieved], keyword: list[Retrieved]) -> list[Retrieved]:
        fused = rrf(
            [[h.id for h in dense], [h.id for h in keyword]], [self.dense_weight, BM25_WEIGHT], k=self.rrf_k
        )
        by_id = {h.id: h for h in keyword}
        by_id.update({h.id: h for h in dense})  # the dense copy carries the store's metadata as-is
        bm25_scores = {h.id: h.bm25_score for h in keyword}
        dense_scores = {h.id: h.dense_score for h in dense}
        # Ties (equal fused score) keep dense order first, then BM25 order.
        order = {cid: i for i, cid in enumerate([h.id for h in dense] + [h.id for h in keyword])}
        ranked = sorted(fused, key=lambda cid: (-fused[cid], order[cid]))
        return [
            replace(
                by_id[cid],
                score=fused[cid],
                dense_score=dense_scores.get(cid),
                bm25_score=bm25_scores.get(cid),
            )
            for cid in ranked
        ]
