"""Shared fixtures: every data path in tmp_path, a scripted model server, both databases.

The autouse fixture empties the environment of Lingxi's variables, pins the
provider to "openai" (so no test loads the bundled offline model by accident)
and moves into tmp_path, so no test reads a developer's ``.env`` or writes into ./data.
``database_url`` runs a test on SQLite and, when ``LINGXI_TEST_POSTGRES_URL``
is set (``.ci/run`` starts a server and sets it), on PostgreSQL too, each test
in a schema of its own.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from assistant.config import Settings
from assistant.services import Lingxi
from rag.ingest import KnowledgeBase
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.openai_server import FakeOpenAI

POSTGRES_ENV = "LINGXI_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    for key in list(os.environ):
        # LINGXI_TEST_* name the throwaway servers .ci/run started; they are not app settings.
        if key.startswith("LINGXI_") and not key.startswith("LINGXI_TEST_") or key == "DEEPSEEK_API_KEY":
            monkeypatch.delenv(key)
    monkeypatch.setenv("LINGXI_DATA_DIR", str(tmp_path / "data"))
    # Without a key the default provider is the bundled offline model: tests talk to
    # fake servers instead, unless they unset this to test that choice.
    monkeypatch.setenv("LINGXI_LLM_PROVIDER", "openai")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'lingxi.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} is not set in CI: .ci/run must start PostgreSQL")
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (see scripts/pg_test_server.sh)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def fake_llm():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path, database_url, fake_llm) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        llm_base_url=fake_llm.base_url,
        llm_api_key="sk-test-secret",
        llm_model="deepseek-chat",
        llm_max_retries=3,
        llm_retry_base_delay=0.01,
        llm_retry_max_delay=0.05,
        llm_timeout=5,
        timezone="Asia/Shanghai",
    )


@pytest.fixture
def lingxi(settings):
    app = Lingxi.create(settings)
    yield app
    app.close()


RETURNS = "# Returns\n\nUnopened items can be returned within 30 days for a full refund.\n"
SHIPPING = "# 配送\n\n同城配送满 99 元免运费，其余订单运费 10 元。\n"


@pytest.fixture
def shop(lingxi, tmp_path):
    """The app with a small knowledge base (fake embedder: instant, word-overlap similarity)."""
    settings = lingxi.settings.model_copy(update={"kb_relevance_threshold": 0.3, "kb_collections": "default"})
    kb = KnowledgeBase(settings=settings, db=lingxi.db, counter=lingxi.counter, embedder=FakeEmbedder())
    (tmp_path / "returns.md").write_text(RETURNS)
    (tmp_path / "shipping.md").write_text(SHIPPING)
    assert {o.status for o in kb.ingest([tmp_path / "returns.md", tmp_path / "shipping.md"], "default")} == {"ready"}
    lingxi.kb = lingxi.agent.kb = kb
    lingxi.agent.settings = settings
    return lingxi
