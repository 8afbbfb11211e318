"""Which model answers: "auto" picks DeepSeek with a key, else the bundled offline model.

tests/conftest.py pins LINGXI_LLM_PROVIDER=openai for every other test; these
unset it to see the real default. No test here loads a model: the local
engine is replaced by a stand-in that records what it was asked to load (the
real engine behind ``Lingxi`` is tested in tests/assistant/engine/test_provider.py).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import app
from assistant import config
from assistant.config import BUNDLED_MODEL, Settings, SettingsError, load_settings
from assistant.providers import default_choice, missing_key
from assistant.services import Lingxi


@pytest.fixture(autouse=True)
def unpinned(monkeypatch):
    monkeypatch.delenv("LINGXI_LLM_PROVIDER")


@pytest.fixture
def no_bundled_model(tmp_path, monkeypatch):
    """A checkout without the bundled model."""
    missing = tmp_path / "checkout" / "assistant" / "engine" / "bundled" / "lingxi-mini"
    monkeypatch.setattr(config, "BUNDLED_MODEL", missing)
    return missing


@pytest.fixture
def bundled_model(tmp_path, monkeypatch):
    """A checkout with the bundled model (only its config.json: nothing loads it here)."""
    path = tmp_path / "checkout" / "lingxi-mini"
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    monkeypatch.setattr(config, "BUNDLED_MODEL", path)
    return path


class FakeLocal:
    """Stands in for ``assistant.engine.provider.LocalProvider``."""

    started: list[Settings] = []

    def __init__(self, settings: Settings):
        self.base_url = "http://127.0.0.1:9/v1"
        self.model_name = settings.local_model.name
        self.closed = False

    @classmethod
    def start(cls, settings: Settings) -> FakeLocal:
        cls.started.append(settings)
        return cls(settings)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_engine(monkeypatch):
    FakeLocal.started = []
    monkeypatch.setattr("assistant.engine.provider.LocalProvider", FakeLocal)
    return FakeLocal


# --- Resolution ---------------------------------------------------------------------------------


def test_no_key_and_no_provider_means_the_bundled_offline_model(bundled_model):
    s = Settings()
    assert s.llm_provider == "auto"
    assert s.provider == "local"
    assert s.local_model_path == bundled_model
    assert BUNDLED_MODEL.parts[-3:] == ("engine", "bundled", "lingxi-mini")
    assert s.bundled_model_in_use


def test_no_key_and_no_bundled_model_in_the_checkout_stays_on_deepseek(no_bundled_model):
    s = Settings()
    assert s.provider == "openai" and s.local_model_path is None and not s.bundled_model_in_use
    s.check_local_model()  # nothing to load: replies say that no key is set, as without the offline model
    assert missing_key(default_choice(s))


@pytest.mark.parametrize("variable", ["LINGXI_LLM_API_KEY", "DEEPSEEK_API_KEY"])
def test_a_key_means_deepseek_as_before(monkeypatch, variable):
    monkeypatch.setenv(variable, "sk-test")
    s = Settings()
    assert s.provider == "openai" and s.local_model_path is None and not s.bundled_model_in_use
    assert s.llm_base_url == "https://api.deepseek.com" and s.llm_model == "deepseek-chat"


def test_a_key_in_dotenv_counts(tmp_path):
    (tmp_path / ".env").write_text("DEEPSEEK_API_KEY=sk-from-file\n", encoding="utf-8")
    assert Settings().provider == "openai"


def test_explicit_openai_without_a_key_stays_on_deepseek_and_reports_the_missing_key(monkeypatch):
    monkeypatch.setenv("LINGXI_LLM_PROVIDER", "openai")
    s = Settings()
    assert s.provider == "openai" and s.local_model_path is None
    assert missing_key(default_choice(s))  # replies say a key is needed, as they did


def test_a_self_hosted_base_url_without_a_key_is_used(monkeypatch):
    monkeypatch.setenv("LINGXI_LLM_BASE_URL", "http://localhost:11434/v1")
    assert Settings().provider == "openai"


def test_local_model_is_honoured_without_a_key(monkeypatch, tmp_path):
    monkeypatch.setenv("LINGXI_LOCAL_MODEL", str(tmp_path / "my-ckpt"))
    s = Settings()
    assert s.provider == "local" and s.local_model_path == tmp_path / "my-ckpt" and not s.bundled_model_in_use


def test_a_key_beats_local_model_unless_local_is_asked_for(monkeypatch, tmp_path):
    monkeypatch.setenv("LINGXI_LOCAL_MODEL", str(tmp_path / "my-ckpt"))
    monkeypatch.setenv("LINGXI_LLM_API_KEY", "sk-test")
    assert Settings().provider == "openai"
    monkeypatch.setenv("LINGXI_LLM_PROVIDER", "local")
    assert Settings().provider == "local"


def test_explicit_local_needs_a_model_when_the_checkout_has_none(no_bundled_model):
    with pytest.raises(SettingsError, match="LINGXI_LOCAL_MODEL.*no bundled offline model"):
        load_settings(llm_provider="local")


def test_explicit_local_without_a_path_takes_the_bundled_model(bundled_model, monkeypatch):
    monkeypatch.setenv("LINGXI_LLM_API_KEY", "sk-test")  # "local" is asked for: the key does not matter
    s = load_settings(llm_provider="local")
    assert s.provider == "local" and s.local_model_path == bundled_model and s.bundled_model_in_use


def test_unknown_provider_is_one_line(monkeypatch):
    monkeypatch.setenv("LINGXI_LLM_PROVIDER", "ollama")
    with pytest.raises(SettingsError, match="LINGXI_LLM_PROVIDER"):
        load_settings()


def test_resolved_keeps_the_choice_when_the_url_then_points_at_the_engine(bundled_model):
    s = Settings().resolved()
    assert (s.llm_provider, s.local_model) == ("local", bundled_model)
    moved = s.model_copy(update={"llm_base_url": "http://127.0.0.1:5555/v1"})
    assert moved.provider == "local" and moved.bundled_model_in_use


def test_the_bundled_model_decodes_greedily_unless_a_temperature_is_set(bundled_model, monkeypatch):
    assert Settings().resolved().llm_temperature == 0.0
    assert Settings(llm_api_key="sk-x").resolved().llm_temperature == 0.7  # DeepSeek keeps its default
    monkeypatch.setenv("LINGXI_LLM_TEMPERATURE", "0.4")
    assert Settings().resolved().llm_temperature == 0.4


# --- A missing model ----------------------------------------------------------------------------


def test_missing_local_model_names_it(monkeypatch, tmp_path):
    monkeypatch.setenv("LINGXI_LOCAL_MODEL", str(tmp_path / "nowhere"))
    with pytest.raises(SettingsError, match="LINGXI_LOCAL_MODEL.*nowhere"):
        Settings().check_local_model()


def test_a_hosted_provider_needs_no_model(no_bundled_model, monkeypatch):
    monkeypatch.setenv("LINGXI_LLM_API_KEY", "sk-test")
    Settings().check_local_model()


def test_serve_with_a_missing_local_model_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    def no_server(*_args, **_kwargs):
        raise AssertionError("uvicorn must not start")

    monkeypatch.setattr("uvicorn.run", no_server)
    monkeypatch.setenv("LINGXI_LOCAL_MODEL", str(tmp_path / "nowhere"))
    assert app.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lingxi: LINGXI_LOCAL_MODEL: no checkpoint at") and "nowhere" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "data").exists()


# --- Starting the app ---------------------------------------------------------------------------


def test_the_app_starts_the_engine_on_the_bundled_model(bundled_model, fake_engine):
    lingxi = Lingxi.create(Settings(timezone="UTC"))
    try:
        [given] = fake_engine.started
        assert given.local_model == bundled_model and given.llm_provider == "local"
        s = lingxi.settings
        assert s.llm_base_url == "http://127.0.0.1:9/v1" and s.llm_model == "lingxi-mini"
        assert s.provider == "local" and s.bundled_model_in_use  # the loopback URL does not read as "openai"
    finally:
        lingxi.close()
    assert lingxi.local.closed


def test_the_knowledge_base_command_does_not_load_the_model(no_bundled_model, fake_engine):
    lingxi = Lingxi.create(Settings(), start_engine=False)
    try:
        assert lingxi.local is None and fake_engine.started == []
    finally:
        lingxi.close()


def test_a_broken_bundled_model_is_one_line_with_the_way_out(bundled_model, monkeypatch):
    def broken(_settings):
        raise RuntimeError("bad safetensors header")

    monkeypatch.setattr("assistant.engine.provider.LocalProvider", SimpleNamespace(start=broken))
    with pytest.raises(SettingsError) as info:
        Lingxi.create(Settings())
    message = str(info.value)
    assert "bad safetensors header" in message and str(bundled_model) in message and "DEEPSEEK_API_KEY" in message
