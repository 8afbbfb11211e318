"""Settings: defaults, environment, .env, secrets and the one-line error report."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.config import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-very-secret-123456"


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("LINGXI_DATA_DIR")
    monkeypatch.delenv("LINGXI_LLM_PROVIDER")  # pinned to "openai" by tests/conftest.py
    s = Settings()
    from assistant.config import BUNDLED_MODEL

    # No key: the bundled offline model when the checkout has it, else DeepSeek (replies say a key is missing).
    assert s.llm_provider == "auto" and s.provider == ("local" if (BUNDLED_MODEL / "config.json").is_file() else "openai")
    assert s.llm_base_url == "https://api.deepseek.com"
    assert s.llm_model == "deepseek-chat"
    assert s.llm_api_key is None
    assert s.port == 7860
    assert s.host == "127.0.0.1"
    assert s.data_dir == Path("./data")
    assert s.database_url is None
    assert s.db_url == f"sqlite:///{(tmp_path / 'data' / 'lingxi.db').resolve()}"
    assert s.llm_max_retries == 4
    assert s.context_max_tokens == 32000


def test_db_url_follows_data_dir_and_database_url(tmp_path, monkeypatch):
    monkeypatch.setenv("LINGXI_DATA_DIR", str(tmp_path / "elsewhere"))
    assert Settings().db_url == f"sqlite:///{(tmp_path / 'elsewhere' / 'lingxi.db').resolve()}"
    monkeypatch.setenv("LINGXI_DATABASE_URL", "postgresql+psycopg://u:p@db:5432/lingxi")
    assert Settings().db_url == "postgresql+psycopg://u:p@db:5432/lingxi"


def test_environment_variables_read(monkeypatch):
    monkeypatch.setenv("LINGXI_LLM_BASE_URL", "http://localhost:8000/v1/")
    monkeypatch.setenv("LINGXI_LLM_MODEL", "deepseek-reasoner")
    monkeypatch.setenv("LINGXI_PORT", "8080")
    monkeypatch.setenv("LINGXI_HOST", "0.0.0.0")
    monkeypatch.setenv("LINGXI_TIMEZONE", "Europe/London")
    monkeypatch.setenv("LINGXI_LLM_MAX_RETRIES", "2")
    monkeypatch.setenv("LINGXI_LLM_TEMPERATURE", "0.2")
    s = Settings()
    assert s.llm_base_url == "http://localhost:8000/v1"  # trailing slash dropped
    assert s.llm_model == "deepseek-reasoner"
    assert s.port == 8080
    assert s.host == "0.0.0.0"
    assert s.timezone == "Europe/London"
    assert s.tz.key == "Europe/London"
    assert s.llm_max_retries == 2
    assert s.llm_temperature == 0.2


def test_dotenv_in_working_directory(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(
        "LINGXI_LLM_MODEL=from-dotenv\n"
        "LINGXI_PORT=9001\n"
        f"LINGXI_LLM_API_KEY={SECRET}\n"
        "UNRELATED_SETTING=ignored\n",
        encoding="utf-8",
    )
    s = Settings()
    assert s.llm_model == "from-dotenv"
    assert s.port == 9001
    assert s.llm_api_key.get_secret_value() == SECRET
    # The environment beats the file.
    monkeypatch.setenv("LINGXI_PORT", "9002")
    assert Settings().port == 9002


def test_deepseek_api_key_accepted(monkeypatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-deepseek")
    assert Settings().llm_api_key.get_secret_value() == "sk-deepseek"


def test_deepseek_api_key_from_dotenv(tmp_path):
    (tmp_path / ".env").write_text("DEEPSEEK_API_KEY=sk-from-file\n", encoding="utf-8")
    assert Settings().llm_api_key.get_secret_value() == "sk-from-file"


def test_lingxi_key_wins_over_deepseek_key(monkeypatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-deepseek")
    monkeypatch.setenv("LINGXI_LLM_API_KEY", "sk-lingxi")
    assert Settings().llm_api_key.get_secret_value() == "sk-lingxi"


def test_secret_never_shown(monkeypatch):
    monkeypatch.setenv("LINGXI_LLM_API_KEY", SECRET)
    s = Settings()
    assert s.llm_api_key.get_secret_value() == SECRET
    for shown in (repr(s), str(s), repr(s.llm_api_key), str(s.llm_api_key), s.model_dump_json(), str(s.model_dump())):
        assert SECRET not in shown
    assert "**********" in repr(s)


def test_load_settings_bad_port_one_line(monkeypatch):
    monkeypatch.setenv("LINGXI_PORT", "abc")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "LINGXI_PORT" in message
    assert "\n" not in message
    assert message.startswith("invalid setting LINGXI_PORT:")


def test_load_settings_port_out_of_range(monkeypatch):
    monkeypatch.setenv("LINGXI_PORT", "70000")
    with pytest.raises(SettingsError, match="LINGXI_PORT"):
        load_settings()


def test_load_settings_unknown_timezone(monkeypatch):
    monkeypatch.setenv("LINGXI_TIMEZONE", "Mars/Olympus_Mons")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "LINGXI_TIMEZONE" in message
    assert "Mars/Olympus_Mons" in message
    assert "\n" not in message


def test_load_settings_reports_every_problem(monkeypatch):
    monkeypatch.setenv("LINGXI_PORT", "abc")
    monkeypatch.setenv("LINGXI_LLM_BASE_URL", "api.deepseek.com")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "LINGXI_PORT" in message and "LINGXI_LLM_BASE_URL" in message
    assert "\n" not in message


def test_load_settings_overrides_and_success(monkeypatch):
    monkeypatch.setenv("LINGXI_PORT", "8001")
    s = load_settings(llm_model="deepseek-reasoner")
    assert isinstance(s, Settings)
    assert s.port == 8001
    assert s.llm_model == "deepseek-reasoner"


def test_price_of():
    s = Settings(llm_price_input_cache_hit=1.0, llm_price_input_cache_miss=2.0, llm_price_output=3.0)
    assert s.price_of(cache_hit=1_000_000, cache_miss=500_000, completion=2_000_000) == pytest.approx(8.0)
    assert s.price_of(cache_hit=0, cache_miss=0, completion=0) == 0.0
    default = Settings()
    # DeepSeek list prices: 0.028 / 0.28 / 0.42 USD per million.
    assert default.price_of(cache_hit=1_000_000, cache_miss=1_000_000, completion=1_000_000) == pytest.approx(0.728)
    assert default.price_of(cache_hit=640, cache_miss=360, completion=200) == pytest.approx(
        (640 * 0.028 + 360 * 0.28 + 200 * 0.42) / 1_000_000
    )


# --------------------------------------------------------------------------- app.py as a process


def run_app(tmp_path, *args, **env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGXI_") and k != "DEEPSEEK_API_KEY"}
    env["PYTHONPATH"] = str(ROOT)
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_app_migrate_bad_setting_exits_2_with_one_line(tmp_path):
    proc = run_app(tmp_path, "migrate", LINGXI_PORT="notanumber", LINGXI_DATA_DIR=str(tmp_path / "data"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "LINGXI_PORT" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data" / "lingxi.db").exists()


def test_app_migrate_creates_sqlite_database(tmp_path):
    data_dir = tmp_path / "store"
    proc = run_app(tmp_path, "migrate", LINGXI_DATA_DIR=str(data_dir))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "database is up to date (sqlite)" in proc.stdout
    db_file = data_dir / "lingxi.db"
    assert db_file.is_file()
    with sqlite3.connect(db_file) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        versions = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
    assert {"conversations", "messages", "alembic_version"} <= tables
    assert len(versions) == 1
