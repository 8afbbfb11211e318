"""Knowledge-base ingestion and management: the service behind the CLI, the tools and the admin UI.

``KnowledgeBase`` turns files into searchable chunks in a collection:
load (rag.loaders) → split into token-sized pieces (rag.splitter) → embed and
store (rag.store), tracking each file in ``kb_documents`` (queued → indexing →
ready, or error with the reason) and keeping a copy of the original under
``data_dir/kb/COLLECTION/`` so a collection can be re-indexed.

- A file whose bytes match a document already in the collection is reported as
  a duplicate (or as unchanged, when it is the same document) and not indexed.
- Re-uploading a document replaces it: the new version's chunks are written
  first, under new ids, then the old version's are deleted, so a search sees
  one version or the other, never a mix or nothing.
- A bad file fails alone, with a clear reason; its new chunks are removed and
  the other files are still ingested.

Not here: answering questions (tools.knowledge) or HTTP/UI code.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import select

from assistant.config import Settings
from assistant.context import TokenCounter
from assistant.db import Database
from assistant.models import KBDocument, utcnow
from rag.loaders import LoadError, load
from rag.splitter import split

Progress = Callable[[str, float], None]  # (source, fraction done)


@dataclass
class FileOutcome:
    source: str
    doc_id: str
    status: str  # ready | unchanged | duplicate | error
    chunks: int = 0
    error: str | None = None


def chunks_for(path: Path, *, doc_id: str, content_hash: str, settings: Settings, count_tokens) -> list:
    """The stored chunks of one file; ids carry the content hash so versions never collide."""
    from rag.store import Chunk

    sections = load(path, max_bytes=int(settings.kb_max_file_mb * 1024 * 1024))
    pieces = split(sections, chunk_tokens=settings.kb_chunk_tokens, overlap=settings.kb_chunk_overlap,
                   count_tokens=count_tokens)
    if not pieces:
        raise LoadError(f"{path.name}: no text to index")
    return [
        Chunk(f"{doc_id}:{content_hash[:16]}:{p.metadata['chunk_index']}", p.text,
              {**p.metadata, "doc_id": doc_id, "content_hash": content_hash})
        for p in pieces
    ]


class KnowledgeBase:
    def __init__(self, *, settings: Settings, db: Database, counter: TokenCounter, embedder=None):
        self.settings = settings
        self.db = db
        self.counter = counter
        self._embedder = embedder  # None: the configured one, built on first use

    @cached_property
    def store(self):
        # Built on first use: importing Chroma and loading the embedding model take seconds.
        from rag.embeddings import make_embedder
        from rag.store import KnowledgeStore

        return KnowledgeStore(self.settings, self._embedder or make_embedder(self.settings))

    @cached_property
    def retriever(self):
        from rag.retriever import Retriever

        return Retriever(self.store, threshold=self.settings.kb_relevance_threshold)

    def originals(self, collection: str) -> Path:
        return self.settings.data_dir / "kb" / collection

    # ---- ingestion ------------------------------------------------------------------

    def ingest(self, paths: list[Path], collection: str, *, on_progress: Progress | None = None) -> list[FileOutcome]:
        from rag.store import check_collection_name

        check_collection_name(collection)
        self.store.ensure(collection)
        outcomes = [self._ingest_one(Path(p), collection, on_progress) for p in paths]
        self.retriever.invalidate(collection)
        return outcomes

    def _ingest_one(self, path: Path, collection: str, on_progress: Progress | None) -> FileOutcome:
        doc_id = path.stem
        try:
            data = path.read_bytes()
        except OSError as exc:
            return FileOutcome(path.name, doc_id, "error", error=f"{path.name}: cannot read ({exc.strerror})")
        digest = hashlib.sha256(data).hexdigest()
        with self.db.session() as session:
            twin = session.scalar(select(KBDocument).where(
                KBDocument.collection == collection, KBDocument.content_hash == digest, KBDocument.status == "ready"))
            if twin is not None:
                status = "unchanged" if twin.doc_id == doc_id else "duplicate"
                note = None if status == "unchanged" else f"{path.name}: same content as {twin.source}; not indexed again"
                return FileOutcome(path.name, doc_id, status, twin.chunk_count, note)
            row = self._row(session, collection, doc_id)
            previous = row.content_hash if row.status == "ready" else None
            row.source, row.size_bytes, row.status, row.progress, row.error = path.name, len(data), "indexing", 0.0, None
            row.updated_at = utcnow()
        try:
            chunks = chunks_for(path, doc_id=doc_id, content_hash=digest, settings=self.settings,
                                count_tokens=self.counter.count)
            step = 32
            for start in range(0, len(chunks), step):
                self.store.upsert(collection, chunks[start : start + step])
                self._progress(collection, doc_id, min(1.0, (start + step) / len(chunks)), path.name, on_progress)
            self.store.delete_where(collection, doc_id=doc_id, keep_hash=digest)
            self._keep_original(path, collection, doc_id)
        except Exception as exc:  # one bad file must not stop the others, nor leave half a version
            self.store.delete_where(collection, doc_id=doc_id, keep_hash=previous)
            message = str(exc) if isinstance(exc, LoadError) else f"{path.name}: {type(exc).__name__}: {exc}"
            self._finish(collection, doc_id, status="error", error=message)
            return FileOutcome(path.name, doc_id, "error", error=message)
        self._finish(collection, doc_id, status="ready", content_hash=digest, chunk_count=len(chunks))
        return FileOutcome(path.name, doc_id, "ready", len(chunks))

    def _row(self, session, collection: str, doc_id: str) -> KBDocument:
        row = session.scalar(select(KBDocument).where(KBDocument.collection == collection, KBDocument.doc_id == doc_id))
        if row is None:
            row = KBDocument(collection=collection, doc_id=doc_id, source="", status="queued")
            session.add(row)
            session.flush()
        return row

    def _progress(self, collection, doc_id, fraction, source, on_progress) -> None:
        with self.db.session() as session:
            row = self._row(session, collection, doc_id)
            row.progress, row.updated_at = fraction, utcnow()
        if on_progress:
            on_progress(source, fraction)

    def _finish(self, collection: str, doc_id: str, **values: Any) -> None:
        with self.db.session() as session:
            row = self._row(session, collection, doc_id)
            for key, value in values.items():
                setattr(row, key, value)
            if values.get("status") == "ready":
                row.progress, row.error = 1.0, None
            row.updated_at = utcnow()

    def _keep_original(self, path: Path, collection: str, doc_id: str) -> None:
        folder = self.originals(collection)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        if path.resolve() != target.resolve():
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(path, tmp)
            tmp.replace(target)  # atomic: a crash never leaves a half-copied original
        for other in folder.glob(f"{doc_id}.*"):
            if other != target and not other.name.endswith(".part"):
                other.unlink()

    def recover_interrupted(self) -> int:
        """Mark files left queued/indexing by a stopped process as failed, so none looks stuck."""
        with self.db.session() as session:
            rows = list(session.scalars(select(KBDocument).where(KBDocument.status.in_(("queued", "indexing")))))
            for row in rows:
                row.status, row.error = "error", "indexing was interrupted (the app stopped); upload the file again"
                row.updated_at = utcnow()
            return len(rows)

    # ---- management ------------------------------------------------------------------

    def documents(self, collection: str | None = None) -> list[dict[str, Any]]:
        with self.db.session() as session:
            query = select(KBDocument).order_by(KBDocument.collection, KBDocument.doc_id)
            if collection:
                query = query.where(KBDocument.collection == collection)
            return [
                {"collection": d.collection, "doc_id": d.doc_id, "source": d.source, "status": d.status,
                 "progress": d.progress, "chunks": d.chunk_count, "error": d.error, "size_bytes": d.size_bytes,
                 "updated_at": d.updated_at.isoformat()}
                for d in session.scalars(query)
            ]

    def delete(self, collection: str, doc_id: str | None = None) -> int:
        """Delete one document (or the whole collection); returns how many documents went."""
        with self.db.session() as session:
            query = select(KBDocument).where(KBDocument.collection == collection)
            if doc_id:
                query = query.where(KBDocument.doc_id == doc_id)
            rows = list(session.scalars(query))
            if doc_id is None:
                self.store.drop(collection)
                shutil.rmtree(self.originals(collection), ignore_errors=True)
            for row in rows:
                if doc_id:
                    self.store.delete_where(collection, doc_id=row.doc_id)
                    for original in self.originals(collection).glob(f"{row.doc_id}.*"):
                        original.unlink()
                session.delete(row)
        self.retriever.invalidate(collection)
        return len(rows)

    def reindex(self, collection: str, *, on_progress: Progress | None = None) -> list[FileOutcome]:
        """Rebuild a collection from the kept originals (after an embedding-model change).

        Refuses, changing nothing, when a ready document has no kept original:
        dropping the collection would lose it.
        """
        folder = self.originals(collection)
        paths = sorted(p for p in folder.glob("*") if p.is_file() and not p.name.endswith(".part")) if folder.exists() else []
        kept = {p.name for p in paths}
        lost = [d["source"] for d in self.documents(collection) if d["status"] == "ready" and d["source"] not in kept]
        if lost:
            raise ValueError(f"cannot re-index {collection!r}: the original of {', '.join(lost)} is missing; "
                             "upload it again instead")
        copies = Path(self.settings.data_dir) / "kb-reindex" / collection
        shutil.rmtree(copies, ignore_errors=True)
        copies.mkdir(parents=True)
        for p in paths:
            shutil.copyfile(p, copies / p.name)
        self.store.drop(collection)
        with self.db.session() as session:
            for row in session.scalars(select(KBDocument).where(KBDocument.collection == collection)):
                session.delete(row)
        try:
            return self.ingest([copies / p.name for p in paths], collection, on_progress=on_progress)
        finally:
            shutil.rmtree(copies, ignore_errors=True)

    def search(self, collection: str, query: str, k: int = 5, mode: str = "hybrid"):
        return self.retriever.search(collection, query, k=k, mode=mode)


def eval_ingest(settings: Settings, counter: TokenCounter):
    """The ``ingest`` callable ``rag.evaluate.evaluate`` needs: the app's own load/split/chunk path."""

    def ingest(store, collection: str, paths: list[Path]) -> int:
        total = 0
        for path in paths:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            chunks = chunks_for(path, doc_id=path.stem, content_hash=digest, settings=settings,
                                count_tokens=counter.count)
            store.upsert(collection, chunks)
            total += len(chunks)
        return total

    return ingest
