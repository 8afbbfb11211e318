"""Retrieval evaluation behind ``python app.py kb eval``.

``evaluate`` ingests a folder of documents (one file per document, the file's
stem is its doc id) into a temporary collection in a throwaway store, runs every
query of a JSONL file ({"id", "query", "gold": [doc ids]}; an empty gold means
the knowledge base cannot answer it) in dense, BM25 and hybrid modes, and
returns the metrics as a dict; ``format_report`` renders it as text.

Metrics: recall@1 and recall@5 (a query is a hit when a chunk of a gold document
is among the top k), MRR over the top ``DEPTH`` (answerable queries only),
unanswerable detection precision/recall at ``settings.kb_relevance_threshold``,
the threshold that would have maximised its F1 here (a calibration aid, not a
setting), ingestion throughput and hybrid query latency.

It does not load or split files itself: the caller passes ``ingest``, so the
evaluation measures exactly the pipeline the app uses. Nothing is written
outside a temporary directory, which is removed afterwards.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.retriever import Mode, Retrieved, Retriever

DEPTH = 10  # how deep MRR looks
RECALL_AT = (1, 5)
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid")  # the report's column order

Ingest = Callable[[Any, str, list[Path]], int]


@dataclass(frozen=True)
class Query:
    id: str
    query: str
    gold: frozenset[str]


def load_queries(path: Path, doc_ids: set[str]) -> list[Query]:
    """Parse and check the queries file; every gold id must name a document."""
    queries: list[Query] = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            query = Query(str(row["id"]), str(row["query"]), frozenset(map(str, row["gold"])))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: expected {{\"id\", \"query\", \"gold\": [doc ids]}} ({e})") from e
        unknown = query.gold - doc_ids
        if unknown:
            raise ValueError(f"{path}:{n}: gold names no document in the folder: {', '.join(sorted(unknown))}")
        queries.append(query)
    if not queries:
        raise ValueError(f"{path}: no queries")
    return queries


def evaluate(
    docs_dir: Path | str,
    queries_file: Path | str,
    *,
    settings: Any,
    embedder: Any,
    ingest: Ingest,
) -> dict[str, Any]:
    """Ingest ``docs_dir`` into a temporary store, run the queries, return the metrics."""
    from rag.store import KnowledgeStore  # imported here: chromadb is slow to import

    paths = sorted(p for p in Path(docs_dir).iterdir() if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise ValueError(f"{docs_dir}: no documents")
    doc_ids = {p.stem for p in paths}
    queries = load_queries(Path(queries_file), doc_ids)
    threshold = float(settings.kb_relevance_threshold)

    # Always embedded Chroma in a throwaway directory, even when the app is set up
    # with a Chroma server: the evaluation must not touch real knowledge bases.
    with tempfile.TemporaryDirectory(prefix="lingxi-kb-eval-", ignore_cleanup_errors=True) as tmp:
        local = settings.model_copy(update={"data_dir": Path(tmp), "chroma_url": None})
        store = KnowledgeStore(local, embedder)
        collection = f"kb-eval-{uuid.uuid4().hex[:12]}"
        try:
            started = time.perf_counter()
            chunks = ingest(store, collection, paths)
            ingest_s = time.perf_counter() - started
            retriever = Retriever(store, threshold=threshold)
            started = time.perf_counter()
            retriever.search(collection, queries[0].query, k=1, mode="bm25")  # builds the BM25 index
            index_s = time.perf_counter() - started
            runs: dict[str, list[list[Retrieved]]] = {mode: [] for mode in MODES}
            latencies: list[float] = []
            for query in queries:
                for mode in MODES:
                    started = time.perf_counter()
                    runs[mode].append(retriever.search(collection, query.query, k=DEPTH, mode=mode))
                    if mode == "hybrid":
                        latencies.append((time.perf_counter() - started) * 1000)
        finally:
            store.drop(collection)

    best_dense = [_best_dense(hits) for hits in runs["hybrid"]]
    unanswerable = [not q.gold for q in queries]
    detected = [not retriever.answerable(hits) for hits in runs["hybrid"]]
    return {
        "docs": len(paths),
        "queries": len(queries),
        "unanswerable_queries": sum(unanswerable),
        "embedding_model": getattr(embedder, "model_id", type(embedder).__name__),
        "chunks": chunks,
        "ingest_seconds": ingest_s,
        "chunks_per_second": chunks / ingest_s if ingest_s > 0 else float("inf"),
        "bm25_index_ms": index_s * 1000,
        "retrieval": {mode: _ranking_metrics(queries, runs[mode], doc_ids) for mode in MODES},
        "unanswerable": {"threshold": threshold, **_detection(unanswerable, detected)},
        "calibration": _calibrate(unanswerable, best_dense),
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "per_query": [
            {
                "id": q.id,
                "gold": sorted(q.gold),
                "best_dense": best_dense[i],
                **{f"{mode}_rank": _first_gold_rank(runs[mode][i], q.gold, doc_ids) for mode in MODES},
                "top_hybrid": _doc_of(runs["hybrid"][i][0].metadata, doc_ids) if runs["hybrid"][i] else None,
            }
            for i, q in enumerate(queries)
        ],
    }


def _doc_of(metadata: Mapping[str, Any], doc_ids: set[str]) -> str | None:
    """The document a chunk came from: its doc_id, else its source file's stem."""
    doc_id = metadata.get("doc_id")
    if doc_id in doc_ids:
        return str(doc_id)
    source = metadata.get("source")
    return Path(str(source)).stem if source else (str(doc_id) if doc_id else None)


def _first_gold_rank(hits: Sequence[Retrieved], gold: frozenset[str], doc_ids: set[str]) -> int | None:
    for rank, hit in enumerate(hits, start=1):
        if _doc_of(hit.metadata, doc_ids) in gold:
            return rank
    return None


def _ranking_metrics(queries: Sequence[Query], runs: Sequence[Sequence[Retrieved]], doc_ids: set[str]) -> dict:
    ranks = [_first_gold_rank(hits, q.gold, doc_ids) for q, hits in zip(queries, runs) if q.gold]
    n = len(ranks) or 1  # no answerable queries: every metric is 0
    out = {f"recall@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in RECALL_AT}
    out["mrr"] = sum(1 / r for r in ranks if r is not None) / n
    return out


def _best_dense(hits: Sequence[Retrieved]) -> float:
    scores = [h.dense_score for h in hits if h.dense_score is not None]
    return max(scores) if scores else -1.0


def _detection(actual: Sequence[bool], predicted: Sequence[bool]) -> dict[str, Any]:
    """Precision/recall/F1 with "unanswerable" as the positive class."""
    tp = sum(a and p for a, p in zip(actual, predicted))
    fp = sum(p and not a for a, p in zip(actual, predicted))
    fn = sum(a and not p for a, p in zip(actual, predicted))
    precision = tp / (tp + fp) if tp + fp else None  # None: nothing was flagged
    recall = tp / (tp + fn) if tp + fn else None  # None: the set has no unanswerable query
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def _calibrate(unanswerable: Sequence[bool], best_dense: Sequence[float]) -> dict[str, Any]:
    """The threshold (a midpoint between observed scores) with the best F1 here.

    Ties go to the lowest such threshold: wrongly saying "no relevant passage"
    hides an answer the owner wrote, so the calibration leans the other way.
    """
    scores = sorted(set(best_dense))
    candidates = [scores[0] - 0.01] + [(a + b) / 2 for a, b in zip(scores, scores[1:])] + [scores[-1] + 0.01]
    best: dict[str, Any] | None = None
    for t in candidates:
        result = _detection(unanswerable, [s < t for s in best_dense])
        if best is None or result["f1"] > best["f1"]:
            best = {"threshold": round(t, 4), **result}
    assert best is not None
    return best


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (like numpy's default); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_report(result: Mapping[str, Any]) -> str:
    """The result of ``evaluate`` as a plain-text report (metrics side by side)."""
    retrieval = result["retrieval"]
    answerable = result["queries"] - result["unanswerable_queries"]
    lines = [
        f"Knowledge-base evaluation: {result['docs']} documents, {result['chunks']} chunks, "
        f"{result['queries']} queries ({answerable} answerable, {result['unanswerable_queries']} unanswerable), "
        f"embeddings {result['embedding_model']}",
        "",
        f"{'':<12}" + "".join(f"{mode:>9}" for mode in MODES),
    ]
    for metric, label in [*((f"recall@{k}", f"recall@{k}") for k in RECALL_AT), ("mrr", f"MRR@{DEPTH}")]:
        lines.append(f"{label:<12}" + "".join(f"{retrieval[mode][metric]:>9.3f}" for mode in MODES))
    det, cal = result["unanswerable"], result["calibration"]
    lines += [
        "",
        f"Unanswerable detection at threshold {det['threshold']:.2f} (best dense cosine of the hybrid hits "
        f"below it): precision {_fmt(det['precision'])}, recall {_fmt(det['recall'])}, F1 {det['f1']:.3f} "
        f"(TP {det['tp']}, FP {det['fp']}, FN {det['fn']})",
        f"Calibration aid, not applied: threshold {cal['threshold']:.3f} would maximise F1 on this set "
        f"(precision {_fmt(cal['precision'])}, recall {_fmt(cal['recall'])}, F1 {cal['f1']:.3f})",
        "",
        f"Ingestion: {result['chunks']} chunks in {result['ingest_seconds']:.2f} s "
        f"({result['chunks_per_second']:.1f} chunks/s); BM25 index built in {result['bm25_index_ms']:.0f} ms",
        f"Hybrid query latency: p50 {result['latency_ms']['p50']:.1f} ms, p95 {result['latency_ms']['p95']:.1f} ms",
    ]
    return "\n".join(lines)
