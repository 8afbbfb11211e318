"""KnowledgeStore on embedded Chroma (tmp_path) and, when LINGXI_TEST_CHROMA_URL
is set (scripts/chroma_test_server.sh; .ci/run starts one), on a Chroma server.

Most tests embed with a small deterministic fake; one uses the real E5 model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import rag.store
from assistant.config import Settings
from rag.embeddings import E5Embedder, Embedder
from rag.store import Chunk, EmbeddingMismatch, KnowledgeStore
from tests.fakes.embedder import FakeEmbedder

CHROMA_ENV = "LINGXI_TEST_CHROMA_URL"
# Read at import time: the autouse isolated_env fixture clears LINGXI_* variables.
SERVER_URL = os.environ.get(CHROMA_ENV)
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Backend:
    kind: str
    settings: Settings
    names: list[str] = field(default_factory=list)

    def name(self) -> str:
        """A fresh collection name, dropped after the test."""
        value = f"t-{uuid.uuid4().hex[:12]}"
        self.names.append(value)
        return value

    def store(self, embedder: Embedder | None = None) -> KnowledgeStore:
        return KnowledgeStore(self.settings, embedder or FakeEmbedder())


@pytest.fixture(params=["embedded", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "embedded":
        yield Backend("embedded", Settings(data_dir=tmp_path / "data"))
        return
    if not SERVER_URL:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMA_ENV} is not set in CI: .ci/run must start a Chroma server")
        pytest.skip(f"Chroma server tests need {CHROMA_ENV} (see scripts/chroma_test_server.sh)")
    b = Backend("server", Settings(data_dir=tmp_path / "data", chroma_url=SERVER_URL))
    yield b
    cleanup = b.store()
    for name in b.names:
        cleanup.drop(name)


def faq_chunks(doc_id: str, content_hash: str, texts: list[str]) -> list[Chunk]:
    return [
        Chunk(
            id=f"{doc_id}:{content_hash}:{i}",
            text=text,
            metadata={"doc_id": doc_id, "source": f"{doc_id}.md", "title": "FAQ",
                      "section": "Returns", "page": None, "chunk_index": i,
                      "content_hash": content_hash},
        )
        for i, text in enumerate(texts)
    ]


TEXTS = [
    "Returns are accepted within seven days of delivery",
    "The warranty lasts one year from purchase",
    "Shipping is free for orders over fifty yuan",
]


def test_upsert_then_query_returns_relevant_chunk_first(backend: Backend) -> None:
    store, name = backend.store(), backend.name()
    store.upsert(name, faq_chunks("faq", "h1", TEXTS) + faq_chunks("other", "h9", ["shipping rates"]))
    hits = store.query(name, "how long does the warranty last", k=3)
    assert [h.id for h in hits][0] == "faq:h1:1"
    top = hits[0]
    assert top.text == TEXTS[1]
    assert top.metadata == {"doc_id": "faq", "source": "faq.md", "title": "FAQ",
                            "section": "Returns", "chunk_index": 1, "content_hash": "h1"}
    assert "page" not in top.metadata  # None is omitted
    assert len(hits) == 3 and all(-1.0 <= h.score <= 1.0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # Cosine similarity: the identical text scores ~1.
    assert store.query(name, TEXTS[0], k=1)[0].score == pytest.approx(1.0, abs=1e-4)
    only_other = store.query(name, "warranty", k=5, where={"doc_id": "other"})
    assert [h.id for h in only_other] == ["other:h9:0"]
    assert len(store.query(name, "returns", k=50)) == 4  # k beyond the count is fine


def test_upsert_replaces_same_id_and_batches(backend: Backend) -> None:
    embedder = FakeEmbedder()
    store, name = backend.store(embedder), backend.name()
    store.upsert(name, faq_chunks("faq", "h1", [f"text {i}" for i in range(5)]), batch=2)
    assert embedder.passage_calls == [2, 2, 1]
    store.upsert(name, [Chunk("faq:h1:0", "changed text", {"doc_id": "faq", "content_hash": "h1"})])
    assert store.count(name) == 5
    assert {c.id: c.text for c in store.all_chunks(name)}["faq:h1:0"] == "changed text"
    with pytest.raises(ValueError):
        store.upsert(name, [], batch=0)


def test_delete_where_keep_hash_keeps_only_the_new_version(backend: Backend) -> None:
    store, name = backend.store(), backend.name()
    store.upsert(name, faq_chunks("faq", "old", TEXTS) + faq_chunks("keep", "k1", ["unrelated"]))
    store.upsert(name, faq_chunks("faq", "new", TEXTS[:2]))  # write new version first
    assert store.count(name, doc_id="faq") == 5
    assert store.delete_where(name, doc_id="faq", keep_hash="new") == 3
    remaining = [c for c in store.all_chunks(name) if c.metadata["doc_id"] == "faq"]
    assert {c.metadata["content_hash"] for c in remaining} == {"new"}
    assert store.count(name, doc_id="keep") == 1
    assert store.delete_where(name, doc_id="faq") == 2
    assert store.count(name, doc_id="faq") == 0 and store.count(name) == 1
    assert store.delete_where(name, doc_id="nothing") == 0
    assert store.delete_where(backend.name(), doc_id="faq") == 0  # no such collection


def test_count_by_document(backend: Backend) -> None:
    store, name = backend.store(), backend.name()
    assert store.count(name) == 0  # missing collection
    store.upsert(name, faq_chunks("a", "h", TEXTS) + faq_chunks("b", "h", TEXTS[:1]))
    assert (store.count(name), store.count(name, "a"), store.count(name, "b")) == (4, 3, 1)
    assert store.count(name, "c") == 0


def test_all_chunks_paginates(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rag.store, "_PAGE", 3)
    store, name = backend.store(), backend.name()
    chunks = faq_chunks("faq", "h", [f"chunk number {i}" for i in range(7)])
    store.upsert(name, chunks)
    got = store.all_chunks(name)
    assert sorted(c.id for c in got) == sorted(c.id for c in chunks)
    assert {c.id: c.metadata for c in got}["faq:h:6"]["chunk_index"] == 6
    assert store.all_chunks(backend.name()) == []


def test_model_mismatch_is_detected(backend: Backend) -> None:
    name = backend.name()
    backend.store(FakeEmbedder("fake:a")).upsert(name, faq_chunks("faq", "h", TEXTS))
    other = backend.store(FakeEmbedder("fake:b"))
    with pytest.raises(EmbeddingMismatch) as info:
        other.ensure(name)
    message = str(info.value)
    assert f'collection "{name}"' in message and "fake:a" in message and "fake:b" in message
    assert f"python app.py kb reindex --collection {name}" in message
    with pytest.raises(EmbeddingMismatch):
        other.query(name, "warranty")
    with pytest.raises(EmbeddingMismatch):
        other.upsert(name, faq_chunks("faq", "h2", ["x"]))
    # Reading stored text and deleting need no embeddings.
    assert other.count(name) == 3
    assert backend.store(FakeEmbedder("fake:a")).count(name) == 3


def test_collection_lifecycle(backend: Backend) -> None:
    store, name = backend.store(), backend.name()
    assert store.query(name, "anything") == []
    store.ensure(name)
    store.ensure(name)  # idempotent
    assert name in store.collection_names()
    assert store.query(name, "anything") == []
    store.drop(name)
    store.drop(name)  # missing is fine
    assert name not in store.collection_names()


def test_telemetry_off_and_collection_config(backend: Backend) -> None:
    store, name = backend.store(), backend.name()
    assert store._client.get_settings().anonymized_telemetry is False
    store.ensure(name)
    collection = store._client.get_collection(name)
    assert collection.metadata == {"embedding_model": "fake:a", "hnsw:space": "cosine"}
    config = collection.configuration_json
    assert config["hnsw"]["space"] == "cosine"
    assert config["embedding_function"]["name"] == "lingxi"
    # Chroma's rebuilt function refuses to embed: its default model is never used.
    with pytest.raises(Exception, match="no embedder attached"):
        collection.add(ids=["x"], documents=["text without an embedding"])


def test_with_e5_embedder(backend: Backend) -> None:
    store, name = backend.store(E5Embedder()), backend.name()
    store.upsert(name, faq_chunks("faq", "h", ["我们支持7天无理由退货", "The warranty lasts one year",
                                               "门店营业时间为早上九点到晚上九点"]))
    hits = store.query(name, "退货政策", k=3)
    assert hits[0].text == "我们支持7天无理由退货"
    assert hits[0].score > hits[1].score


@pytest.mark.parametrize("bad", ["ab", "-faq", "faq-", "知识库", "a b", "faq/x", "x" * 513, ""])
def test_invalid_collection_name(tmp_path: Path, bad: str) -> None:
    store = KnowledgeStore(Settings(data_dir=tmp_path / "data"), FakeEmbedder())
    for call in (
        lambda: store.ensure(bad),
        lambda: store.upsert(bad, faq_chunks("d", "h", ["x"])),
        lambda: store.query(bad, "x"),
        lambda: store.drop(bad),
    ):
        with pytest.raises(ValueError, match="invalid knowledge base name"):
            call()
    assert store.collection_names() == []
    store.ensure("faq.v2_zh-CN")  # valid: dots, underscores, dashes inside


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_persistent_store_survives_reopen(tmp_path: Path) -> None:
    # Written by another process, so nothing is shared through Chroma's
    # in-process client cache: this reads what is on disk.
    data = tmp_path / "data"
    run_python(f"""
        from assistant.config import Settings
        from rag.store import Chunk, KnowledgeStore
        from tests.rag.test_store import FakeEmbedder, faq_chunks, TEXTS
        store = KnowledgeStore(Settings(data_dir={str(data)!r}), FakeEmbedder())
        store.upsert("faq", faq_chunks("faq", "h1", TEXTS))
    """)
    assert (data / "chroma").is_dir()
    store = KnowledgeStore(Settings(data_dir=data), FakeEmbedder())
    assert store.collection_names() == ["faq"]
    assert store.count("faq", doc_id="faq") == 3
    assert store.query("faq", "warranty one year", k=1)[0].id == "faq:h1:1"


def test_chroma_url_errors(tmp_path: Path) -> None:
    for bad in ("127.0.0.1:8000", "ftp://host:1", "http://"):
        with pytest.raises(ValueError, match="chroma_url"):
            KnowledgeStore(Settings(data_dir=tmp_path, chroma_url=bad), FakeEmbedder())
    with pytest.raises(ConnectionError, match="http://127.0.0.1:9"):
        KnowledgeStore(Settings(data_dir=tmp_path, chroma_url="http://127.0.0.1:9"), FakeEmbedder())


