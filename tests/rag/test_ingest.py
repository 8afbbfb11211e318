"""Ingestion: replace on re-upload, duplicates, bad files alone, no half-written versions, re-index."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from assistant.context import TokenCounter
from assistant.db import Database
from assistant.models import KBDocument
from rag.ingest import KnowledgeBase
from rag.store import EmbeddingMismatch
from tests.fakes.embedder import FakeEmbedder

RETURNS_V1 = "# Returns\n\nYou may return unopened items within 7 days for a full refund.\n"
RETURNS_V2 = "# Returns\n\nReturns are accepted within 30 days; shipping is refunded for damaged goods.\n"
SHIPPING = "# 配送\n\n同城配送满 99 元免运费，其余订单运费 10 元。\n"


@pytest.fixture
def kb(settings):
    db = Database(settings.db_url)
    db.migrate()
    yield KnowledgeBase(settings=settings, db=db, counter=TokenCounter(), embedder=FakeEmbedder())
    db.dispose()


def write(folder, name, content):
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def texts(kb, collection="shop"):
    return sorted(c.text for c in kb.store.all_chunks(collection))


def test_ingest_then_search_with_metadata(kb, tmp_path):
    outcomes = kb.ingest([write(tmp_path, "returns.md", RETURNS_V1), write(tmp_path, "shipping.md", SHIPPING)], "shop")
    assert [(o.doc_id, o.status) for o in outcomes] == [("returns", "ready"), ("shipping", "ready")]
    hits = kb.search("shop", "return unopened items refund", k=2)
    assert hits[0].metadata["doc_id"] == "returns"
    assert hits[0].metadata["source"] == "returns.md" and hits[0].metadata["section"] == "Returns"
    docs = {d["doc_id"]: d for d in kb.documents("shop")}
    assert docs["returns"]["status"] == "ready" and docs["returns"]["progress"] == 1.0
    assert docs["shipping"]["chunks"] == kb.store.count("shop", doc_id="shipping") > 0


def test_reupload_replaces_the_old_version(kb, tmp_path):
    kb.ingest([write(tmp_path, "returns.md", RETURNS_V1)], "shop")
    folder = tmp_path / "v2"
    folder.mkdir()
    [outcome] = kb.ingest([write(folder, "returns.md", RETURNS_V2)], "shop")
    assert outcome.status == "ready"
    joined = " ".join(texts(kb))
    assert "30 days" in joined and "7 days" not in joined
    assert len(kb.documents("shop")) == 1
    originals = list(kb.originals("shop").iterdir())
    assert [p.name for p in originals] == ["returns.md"] and "30 days" in originals[0].read_text()


def test_duplicates_and_unchanged_files_are_not_indexed_twice(kb, tmp_path):
    kb.ingest([write(tmp_path, "returns.md", RETURNS_V1)], "shop")
    before = texts(kb)
    again, copy = kb.ingest([tmp_path / "returns.md", write(tmp_path, "returns-copy.md", RETURNS_V1)], "shop")
    assert again.status == "unchanged"
    assert copy.status == "duplicate" and "same content as returns.md" in copy.error
    assert texts(kb) == before
    assert [d["doc_id"] for d in kb.documents("shop")] == ["returns"]


def test_bad_files_fail_alone_with_clear_messages(kb, tmp_path, settings):
    small = KnowledgeBase(settings=settings.model_copy(update={"kb_max_file_mb": 0.001}), db=kb.db,
                          counter=kb.counter, embedder=FakeEmbedder())
    files = [
        write(tmp_path, "broken.pdf", b"%PDF-1.4 not really a pdf"),
        write(tmp_path, "empty.txt", b""),
        write(tmp_path, "tool.exe", b"MZ\x90\x00"),
        write(tmp_path, "legacy.txt", b"\x00\xff\xfe\x00binary\x00\x01"),
        write(tmp_path, "big.md", "# Big\n\n" + "word " * 400),
        write(tmp_path, "good.md", SHIPPING),
    ]
    outcomes = {o.source: o for o in small.ingest(files, "shop")}
    assert outcomes["good.md"].status == "ready"
    for name, words in [("broken.pdf", "corrupt"), ("empty.txt", "empty"), ("tool.exe", "unsupported"),
                        ("legacy.txt", "UTF-8"), ("big.md", "limit")]:
        assert outcomes[name].status == "error", name
        assert name in outcomes[name].error and words in outcomes[name].error, outcomes[name].error
    assert {c.metadata["doc_id"] for c in small.store.all_chunks("shop")} == {"good"}
    statuses = {d["doc_id"]: d["status"] for d in small.documents("shop")}
    assert statuses["good"] == "ready" and statuses["broken"] == "error"


def test_a_failed_replacement_keeps_the_old_version(kb, tmp_path):
    kb.ingest([write(tmp_path, "returns.md", RETURNS_V1)], "shop")
    before = texts(kb)
    folder = tmp_path / "v2"
    folder.mkdir()
    [outcome] = kb.ingest([write(folder, "returns.md", b"\x00\x01\x02 not text")], "shop")
    assert outcome.status == "error"
    assert texts(kb) == before
    [doc] = kb.documents("shop")
    assert doc["status"] == "error" and "returns.md" in doc["error"]


def test_delete_document_and_collection(kb, tmp_path):
    kb.ingest([write(tmp_path, "returns.md", RETURNS_V1), write(tmp_path, "shipping.md", SHIPPING)], "shop")
    assert kb.delete("shop", "returns") == 1
    assert {c.metadata["doc_id"] for c in kb.store.all_chunks("shop")} == {"shipping"}
    assert not (kb.originals("shop") / "returns.md").exists()
    assert kb.delete("shop") == 1
    assert kb.store.all_chunks("shop") == [] and kb.documents("shop") == []


def test_interrupted_indexing_is_reported_not_stuck(kb):
    with kb.db.session() as session:
        session.add(KBDocument(collection="shop", doc_id="manual", source="manual.pdf", status="indexing"))
        session.add(KBDocument(collection="shop", doc_id="faq", source="faq.csv", status="queued"))
    assert kb.recover_interrupted() == 2
    with kb.db.session() as session:
        rows = list(session.scalars(select(KBDocument)))
    assert {r.status for r in rows} == {"error"} and all("interrupted" in r.error for r in rows)


def test_model_change_requires_reindex_which_rebuilds_from_originals(kb, tmp_path, settings):
    kb.ingest([write(tmp_path, "returns.md", RETURNS_V1), write(tmp_path, "shipping.md", SHIPPING)], "shop")
    count = len(texts(kb))
    other = KnowledgeBase(settings=settings, db=kb.db, counter=kb.counter, embedder=FakeEmbedder("fake:b"))
    with pytest.raises(EmbeddingMismatch) as exc:
        other.ingest([write(tmp_path, "new.md", RETURNS_V2)], "shop")
    assert "fake:a" in str(exc.value) and "fake:b" in str(exc.value)
    outcomes = other.reindex("shop")
    assert sorted(o.doc_id for o in outcomes) == ["returns", "shipping"] and all(o.status == "ready" for o in outcomes)
    assert len(texts(other)) == count
    assert other.search("shop", "free delivery 99", k=1)  # searchable with the new model


def test_reindex_refuses_when_an_original_is_missing(kb, tmp_path):
    kb.ingest([write(tmp_path, "returns.md", RETURNS_V1), write(tmp_path, "shipping.md", SHIPPING)], "shop")
    (kb.originals("shop") / "returns.md").unlink()
    before = texts(kb)
    with pytest.raises(ValueError, match="returns.md is missing"):
        kb.reindex("shop")
    assert texts(kb) == before
