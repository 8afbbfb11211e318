"""The knowledge-base vector store: Chroma, one collection per knowledge base.

``KnowledgeStore`` opens Chroma embedded (``PersistentClient`` under
``data_dir/chroma``) or, when ``chroma_url`` is set, a Chroma server
(``HttpClient``), always with telemetry off. It embeds with our ``Embedder``
and hands Chroma the vectors (``embeddings=`` / ``query_embeddings=``); the
embedding function object we register with each collection only exists so
Chroma never falls back to its default one, which downloads a model.

Each collection records the ``model_id`` it was indexed with and uses cosine
distance. Opening it with another model raises ``EmbeddingMismatch``: vectors
of different models are not comparable, so the fix is a re-index.

What it does not do: split or load documents, keyword (BM25) search, or make
one embedded path safe for several writer processes (Chroma is not; run a
Chroma server via ``chroma_url`` when more than one process writes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError
from chromadb.utils.embedding_functions import register_embedding_function

from assistant.config import Settings
from rag.embeddings import Embedder

MetadataValue = str | int | float | bool
# Chroma's own rule for collection names (checked here to give a clearer error).
_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]")
_MODEL_KEY = "embedding_model"
_PAGE = 1000  # rows per get() page: bounded memory and request size


@dataclass
class Chunk:
    """A piece of a document as stored: id, text and flat metadata.

    Metadata keys used by Lingxi: doc_id, source, title, section, page,
    chunk_index, content_hash. ``None`` values are omitted when stored.
    """

    id: str
    text: str
    metadata: dict[str, MetadataValue | None]


@dataclass
class Hit:
    """A query result; ``score`` is cosine similarity in [-1, 1]."""

    id: str
    text: str
    metadata: dict[str, MetadataValue]
    score: float


class EmbeddingMismatch(Exception):
    """A collection was indexed with a different embedding model than configured."""

    def __init__(self, collection: str, indexed: str | None, configured: str) -> None:
        self.collection, self.indexed, self.configured = collection, indexed, configured
        super().__init__(
            f'collection "{collection}" was indexed with {indexed or "an unknown model"}; '
            f"the configured model is {configured}; re-index it "
            f"(python app.py kb reindex --collection {collection})"
        )


@register_embedding_function
class LingxiEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's view of our ``Embedder``.

    Registered under one fixed name for every model, so Chroma's own
    "embedding function conflict" check never fires and our clearer
    ``EmbeddingMismatch`` (based on collection metadata) does instead.
    Chroma rebuilds it from the stored config when listing collections; that
    copy has no embedder and refuses to embed rather than guess a model.
    """

    def __init__(self, embedder: Embedder | None = None, model_id: str = "") -> None:
        self._embedder = embedder
        self._model_id = embedder.model_id if embedder is not None else model_id

    def _require(self) -> Embedder:
        if self._embedder is None:
            raise RuntimeError(f"no embedder attached for {self._model_id or 'this collection'}; "
                               "use rag.store.KnowledgeStore, which passes embeddings explicitly")
        return self._embedder

    def __call__(self, input: Documents) -> Embeddings:
        return cast(Embeddings, self._require().embed_passages(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        return cast(Embeddings, [self._require().embed_query(text) for text in input])

    @staticmethod
    def name() -> str:
        return "lingxi"

    def get_config(self) -> dict[str, Any]:
        return {"model_id": self._model_id}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LingxiEmbeddingFunction:
        return LingxiEmbeddingFunction(model_id=str(config.get("model_id", "")))

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine"]


def check_collection_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a valid Chroma collection name."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid knowledge base name {name!r}: use 3-512 characters from "
            "a-z, A-Z, 0-9, '.', '_', '-', starting and ending with a letter or digit"
        )


def _http_client(url: str, chroma_settings: ChromaSettings) -> ClientAPI:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"chroma_url must look like http://host:port, got {url!r}")
    ssl = parts.scheme == "https"
    port = parts.port or (443 if ssl else 8000)  # 8000: `chroma run`'s default
    try:
        return chromadb.HttpClient(host=parts.hostname, port=port, ssl=ssl, settings=chroma_settings)
    except ValueError as exc:  # chromadb reports an unreachable server this way
        raise ConnectionError(f"cannot reach the Chroma server at {url}: {exc}") from exc


def _stored_metadata(metadata: dict[str, MetadataValue | None]) -> dict[str, MetadataValue]:
    # Chroma rejects None values; absent means "unknown" (e.g. no page number).
    return {key: value for key, value in metadata.items() if value is not None}


class KnowledgeStore:
    """Chroma collections for knowledge bases, embedded with one ``Embedder``."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self._embedder = embedder
        # Typed as Chroma's generic function: its Embeddable union is invariant.
        self._ef = cast(EmbeddingFunction[Any], LingxiEmbeddingFunction(embedder))
        # Telemetry off explicitly: Chroma's default would report usage.
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        self._client: ClientAPI
        if settings.chroma_url:
            self._client = _http_client(settings.chroma_url, chroma_settings)
        else:
            path = settings.data_dir / "chroma"
            path.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)

    def _check_model(self, collection: Collection) -> None:
        indexed = (collection.metadata or {}).get(_MODEL_KEY)
        if indexed != self._embedder.model_id:
            configured = self._embedder.model_id
            raise EmbeddingMismatch(collection.name, str(indexed) if indexed else None, configured)

    def _get(self, name: str, *, check_model: bool) -> Collection | None:
        check_collection_name(name)
        try:
            collection = self._client.get_collection(name, embedding_function=self._ef)
        except NotFoundError:
            return None
        if check_model:
            self._check_model(collection)
        return collection

    def _ensure(self, name: str) -> Collection:
        check_collection_name(name)
        collection = self._client.get_or_create_collection(
            name,
            metadata={_MODEL_KEY: self._embedder.model_id, "hnsw:space": "cosine"},
            embedding_function=self._ef,
        )
        self._check_model(collection)
        return collection

    def collection_names(self) -> list[str]:
        """Every collection in the database (tenant), sorted."""
        return sorted(collection.name for collection in self._client.list_collections())

    def ensure(self, name: str) -> None:
        """Create the collection if needed; EmbeddingMismatch if its model differs."""
        self._ensure(name)

    def drop(self, name: str) -> None:
        """Delete the collection and everything in it; a missing one is fine."""
        check_collection_name(name)
        try:
            self._client.delete_collection(name)
        except NotFoundError:
            pass

    # -- writing -------------------------------------------------------------

    def upsert(self, name: str, chunks: list[Chunk], batch: int = 64) -> None:
        """Embed and store chunks (replacing any with the same id), creating the collection."""
        if batch < 1:
            raise ValueError("batch must be >= 1")
        collection = self._ensure(name)
        # A server caps records per request; never send more than it takes.
        size = min(batch, self._client.get_max_batch_size())
        for start in range(0, len(chunks), size):
            part = chunks[start:start + size]
            texts = [chunk.text for chunk in part]
            collection.upsert(
                ids=[chunk.id for chunk in part],
                embeddings=cast(Any, self._embedder.embed_passages(texts)),
                documents=texts,
                metadatas=cast(Any, [_stored_metadata(chunk.metadata) for chunk in part]),
            )

    def delete_where(self, name: str, *, doc_id: str, keep_hash: str | None = None) -> int:
        """Delete a document's chunks; with ``keep_hash``, all but that version's.

        Replacing a document atomically for readers: upsert the new version's
        chunks first, then ``delete_where(doc_id=..., keep_hash=new_hash)``.
        Returns the number of chunks deleted.
        """
        collection = self._get(name, check_model=False)
        if collection is None:
            return 0
        where: dict[str, Any] = {"doc_id": doc_id}
        if keep_hash is not None:
            # $ne also matches chunks without a content_hash: they go too.
            where = {"$and": [where, {"content_hash": {"$ne": keep_hash}}]}
        result = collection.delete(where=cast(Any, where))
        return int(result["deleted"])

    # -- reading -------------------------------------------------------------

    def query(
        self, name: str, text: str, k: int = 5, where: dict[str, Any] | None = None
    ) -> list[Hit]:
        """The ``k`` chunks most similar to ``text``, best first; [] if no such collection."""
        if k < 1:
            raise ValueError("k must be >= 1")
        collection = self._get(name, check_model=True)
        if collection is None:
            return []
        result = collection.query(
            query_embeddings=cast(Any, [self._embedder.embed_query(text)]),
            n_results=k,
            where=cast(Any, where),
            include=["documents", "metadatas", "distances"],
        )
        ids = result["ids"][0]
        documents = (result["documents"] or [[]])[0]
        metadatas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        # cosine distance = 1 - similarity; clamped against float rounding.
        return [
            Hit(id=id_, text=doc or "", metadata=cast(dict[str, MetadataValue], dict(meta or {})),
                score=max(-1.0, min(1.0, 1.0 - float(dist))))
            for id_, doc, meta, dist in zip(ids, documents, metadatas, distances, strict=True)
        ]

    def all_chunks(self, name: str) -> list[Chunk]:
        """Every chunk of the collection (for the keyword index); [] if none."""
        collection = self._get(name, check_model=False)
        if collection is None:
            return []
        chunks: list[Chunk] = []
        offset = 0
        while True:
            page = collection.get(limit=_PAGE, offset=offset, include=["documents", "metadatas"])
            ids = page["ids"]
            documents = page["documents"] or [""] * len(ids)
            metadatas: list[Any] = list(page["metadatas"] or [{}] * len(ids))
            for id_, doc, meta in zip(ids, documents, metadatas, strict=True):
                chunks.append(Chunk(id=id_, text=doc or "", metadata=dict(meta or {})))
            if len(ids) < _PAGE:
                return chunks
            offset += len(ids)

    def count(self, name: str, doc_id: str | None = None) -> int:
        """Chunks in the collection, or of one document; 0 if no such collection."""
        collection = self._get(name, check_model=False)
        if collection is None:
            return 0
        if doc_id is None:
            return collection.count()
        return len(collection.get(where={"doc_id": doc_id}, include=[])["ids"])
