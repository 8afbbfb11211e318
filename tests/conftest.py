"""Shared fixtures: every data path in tmp_path, a scripted model server, both databases.

The autouse fixture empties the environment of Lingxi's variables and moves
into tmp_path, so no test reads a developer's ``.env`` or writes into ./data.
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
from tests.fakes.openai_server import FakeOpenAI

POSTGRES_ENV = "LINGXI_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    for key in list(os.environ):
        # LINGXI_TEST_* name the throwaway servers .ci/run started; they are not app settings.
        if key.startswith("LINGXI_") and not key.startswith("LINGXI_TEST_") or key == "DEEPSEEK_API_KEY":
            monkeypatch.delenv(key)
    monkeypatch.setenv("LINGXI_DATA_DIR", str(tmp_path / "data"))
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
