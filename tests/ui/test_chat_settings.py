"""ui/chat_settings.py: a browser session's model settings, and where the API key may go."""

from __future__ import annotations

import json

from assistant.config import Settings
from ui.chat_settings import default_prefs, model_choice, model_options


def test_model_choice_keeps_the_key_on_the_server_and_on_its_provider(tmp_path):
    settings = Settings(data_dir=tmp_path, llm_api_key="sk-secret", llm_base_url="https://api.deepseek.com")
    prefs = default_prefs(settings)
    assert "sk-secret" not in json.dumps(prefs)  # what the session stores holds no key
    assert model_choice(prefs, settings).api_key == "sk-secret"

    same = model_choice({"base_url": "https://api.deepseek.com/v1/", "model": "deepseek-reasoner",
                         "temperature": 0.2}, settings)
    assert (same.base_url, same.model, same.temperature, same.api_key) == (
        "https://api.deepseek.com/v1", "deepseek-reasoner", 0.2, "sk-secret")

    other = model_choice({"base_url": "http://127.0.0.1:8000/v1", "model": "local", "temperature": 9}, settings)
    assert other.api_key is None and other.temperature == 2.0  # another origin never gets the key

    broken = model_choice({"base_url": "ftp://x", "model": " ", "temperature": "hot"}, settings)
    assert (broken.base_url, broken.model, broken.temperature) == (
        "https://api.deepseek.com", "deepseek-chat", settings.llm_temperature)


def test_the_configured_model_is_offered_beside_deepseeks(tmp_path):
    assert model_options(Settings(data_dir=tmp_path)) == ["deepseek-chat", "deepseek-reasoner"]
    assert model_options(Settings(data_dir=tmp_path, llm_model="qwen2.5:7b"))[0] == "qwen2.5:7b"
