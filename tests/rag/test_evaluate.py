"""``rag.evaluate``: the metrics dict, the text report, input checks, and the helpers.

A bag-of-words fake embedder keeps these fast and deterministic; the shipped
eval sets run with the real E5 model in test_retriever.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rag.store
from assistant.config import Settings
from rag.evaluate import _calibrate, _detection, evaluate, format_report, load_queries, percentile
from rag.store import Chunk, KnowledgeStore
from tests.fakes.embedder import FakeEmbedder

DOCS = {
    "returns.md": "# Returns\n\nUnused items can be returned within 30 days for a full refund.",
    "shipping.txt": "Orders over 75 dollars ship free. Express delivery costs 24 dollars.",
    "warranty.md": "# Warranty\n\nFrames carry a lifetime warranty against defects.",
}
QUERIES = [
    {"id": "q1", "query": "can unused items be returned for a refund", "gold": ["returns"]},
    {"id": "q2", "query": "how much does express delivery cost", "gold": ["shipping"]},
    {"id": "q3", "query": "lifetime warranty on frames", "gold": ["warranty", "returns"]},
    {"id": "q4", "query": "do you sell pizza", "gold": []},
]


def bow_embedder() -> FakeEmbedder:
    return FakeEmbedder("fake:bow", dim=256)


def ingest_whole_files(store: KnowledgeStore, collection: str, paths: list[Path]) -> int:
    """One chunk per file is enough here; the real pipeline runs in test_retriever.py."""
    chunks = [Chunk(f"{p.stem}:0", p.read_text(), {"doc_id": p.stem, "source": p.name}) for p in paths]
    store.upsert(collection, chunks)
    return len(chunks)


@pytest.fixture
def evalset(tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    (docs / ".DS_Store").write_text("junk")  # hidden files are not documents
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(json.dumps(q) for q in QUERIES) + "\n\n", encoding="utf-8")
    return docs, queries


def test_evaluate_reports_every_metric(evalset, tmp_path, monkeypatch):
    dropped: list[str] = []
    real_drop = rag.store.KnowledgeStore.drop

    def drop(self: KnowledgeStore, name: str) -> None:
        dropped.append(name)
        real_drop(self, name)

    monkeypatch.setattr(rag.store.KnowledgeStore, "drop", drop)
    seen: list[list[str]] = []

    def ingest(store: KnowledgeStore, collection: str, paths: list[Path]) -> int:
        seen.append([p.name for p in paths])
        return ingest_whole_files(store, collection, paths)

    settings = Settings(_env_file=None, data_dir=tmp_path / "data", kb_relevance_threshold=0.3)
    result = evaluate(*evalset, settings=settings, embedder=bow_embedder(), ingest=ingest)

    assert seen == [["returns.md", "shipping.txt", "warranty.md"]]
    assert len(dropped) == 1 and dropped[0].startswith("kb-eval-")
    assert not (tmp_path / "data").exists()  # the temporary store lives elsewhere
    assert (result["docs"], result["queries"], result["unanswerable_queries"], result["chunks"]) == (3, 4, 1, 3)
    assert result["embedding_model"] == "fake:bow"
    for mode in ("dense", "bm25", "hybrid"):
        metrics = result["retrieval"][mode]
        assert set(metrics) == {"recall@1", "recall@5", "mrr"}
        assert metrics["recall@5"] == 1.0  # three documents: gold is always in the top five
        assert 0 < metrics["recall@1"] <= metrics["recall@5"] and 0 < metrics["mrr"] <= 1
    det = result["unanswerable"]
    assert det["threshold"] == 0.3 and det["recall"] == 1.0 and det["tp"] == 1  # "pizza" shares no word
    assert set(result["calibration"]) >= {"threshold", "precision", "recall", "f1"}
    assert result["chunks_per_second"] > 0 and result["bm25_index_ms"] >= 0
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p95"]
    by_id = {row["id"]: row for row in result["per_query"]}
    assert by_id["q2"]["hybrid_rank"] == 1 and by_id["q2"]["top_hybrid"] == "shipping"
    assert by_id["q4"]["dense_rank"] is None and by_id["q4"]["gold"] == []


def test_format_report_shows_the_side_by_side_table(evalset, tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", kb_relevance_threshold=0.3)
    result = evaluate(*evalset, settings=settings, embedder=bow_embedder(), ingest=ingest_whole_files)
    report = format_report(result)
    lines = report.splitlines()
    header = next(line for line in lines if "dense" in line and "bm25" in line)
    assert header.split() == ["dense", "bm25", "hybrid"]
    for label, key in (("recall@1", "recall@1"), ("recall@5", "recall@5"), ("MRR@10", "mrr")):
        row = next(line for line in lines if line.startswith(label))
        values = [float(v) for v in row.split()[1:]]
        expected = [result["retrieval"][m][key] for m in ("dense", "bm25", "hybrid")]
        assert values == pytest.approx(expected, abs=5e-4)
    assert "Unanswerable detection at threshold 0.30" in report and "precision" in report
    assert "Calibration aid, not applied" in report
    assert "chunks/s" in report and "p50" in report and "p95" in report
    json.dumps(result)  # --json must be able to print it as is


def test_report_says_n_a_when_nothing_was_flagged(evalset, tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", kb_relevance_threshold=0.0)
    result = evaluate(*evalset, settings=settings, embedder=bow_embedder(), ingest=ingest_whole_files)
    assert result["unanswerable"]["precision"] is None and result["unanswerable"]["recall"] == 0.0
    assert "precision n/a" in format_report(result)


def test_queries_file_is_checked(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "query": "x", "gold": ["returns"]}\n{"id": "b", "query": "y"}\n')
    with pytest.raises(ValueError, match=r"q.jsonl:2"):
        load_queries(path, {"returns"})
    path.write_text('{"id": "a", "query": "x", "gold": ["refunds"]}\n')
    with pytest.raises(ValueError, match="refunds"):
        load_queries(path, {"returns"})
    path.write_text("not json\n")
    with pytest.raises(ValueError, match=r"q.jsonl:1"):
        load_queries(path, {"returns"})
    path.write_text("\n")
    with pytest.raises(ValueError, match="no queries"):
        load_queries(path, {"returns"})


def test_empty_docs_folder_is_an_error(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "q.jsonl").write_text('{"id": "a", "query": "x", "gold": []}\n')
    with pytest.raises(ValueError, match="no documents"):
        evaluate(tmp_path / "docs", tmp_path / "q.jsonl", settings=Settings(_env_file=None),
                 embedder=bow_embedder(), ingest=ingest_whole_files)


def test_detection_and_percentile_math():
    d = _detection([True, True, False, False], [True, False, True, False])
    assert (d["precision"], d["recall"], d["f1"], d["tp"], d["fp"], d["fn"]) == (0.5, 0.5, 0.5, 1, 1, 1)
    none = _detection([False, False], [False, False])
    assert none["precision"] is None and none["recall"] is None and none["f1"] == 0.0
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)
    assert percentile([], 95) == 0.0 and percentile([7], 95) == 7


def test_calibration_finds_the_separating_threshold():
    unanswerable = [True, True, False, False, False]
    best_dense = [0.70, 0.74, 0.80, 0.85, 0.90]
    cal = _calibrate(unanswerable, best_dense)
    assert cal["threshold"] == pytest.approx(0.77) and cal["f1"] == 1.0
    # Overlapping scores: 0.65 and 0.95 both give F1 2/3; the lower one wins.
    cal = _calibrate([True, False, False, True], [0.60, 0.70, 0.80, 0.90])
    assert cal["threshold"] == pytest.approx(0.65) and cal["f1"] == pytest.approx(2 / 3)
