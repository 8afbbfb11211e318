"""The chat page says when an offline model answers, and how to switch, in both languages."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from assistant.config import BUNDLED_MODEL, Settings
from ui.chat import ChatHandlers, build_ui
from ui.chat_settings import provider_notice
from ui.i18n import make_i18n

ZH = SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"})
EN = SimpleNamespace(headers={"accept-language": "en-US,en;q=0.9"})


def bundled() -> Settings:
    # What Lingxi.create leaves in lingxi.settings when no key is set (no model is loaded here).
    return Settings(llm_provider="local", local_model=BUNDLED_MODEL, llm_base_url="http://127.0.0.1:5555/v1",
                    llm_model="lingxi-mini")


def own_checkpoint() -> Settings:
    return Settings(llm_provider="local", local_model=Path("/models/my-qwen"), llm_base_url="http://127.0.0.1:5555/v1",
                    llm_model="my-qwen")


def test_bundled_model_notice_says_limited_and_how_to_switch_in_english():
    notice = provider_notice(bundled(), "en")
    assert "small built-in model" in notice and "limited abilities" in notice
    for how in ("LINGXI_LLM_API_KEY", "DEEPSEEK_API_KEY", ".env", "restart", "LINGXI_LLM_PROVIDER"):
        assert how in notice


def test_bundled_model_notice_in_chinese():
    notice = provider_notice(bundled(), "zh")
    assert "内置的小型离线模型" in notice and "能力有限" in notice
    for how in ("LINGXI_LLM_API_KEY", "DEEPSEEK_API_KEY", ".env", "重启", "LINGXI_LLM_PROVIDER"):
        assert how in notice


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_own_local_checkpoint_is_named_not_called_built_in(lang):
    notice = provider_notice(own_checkpoint(), lang)
    assert "`my-qwen`" in notice and "LINGXI_LLM_API_KEY" in notice
    assert "built-in" not in notice and "内置" not in notice


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_notice_when_an_api_answers(lang):
    assert provider_notice(Settings(llm_provider="openai"), lang) == ""
    assert provider_notice(Settings(llm_api_key="sk-test"), lang) == ""


def test_the_handler_reads_the_settings_and_follows_the_page_language():
    h = ChatHandlers(SimpleNamespace(settings=bundled()), make_i18n())
    zh, en = h.notice(ZH), h.notice(EN)
    assert isinstance(zh, gr.Markdown) and zh.visible and "离线模式" in zh.value
    assert en.visible and "Offline mode" in en.value
    hidden = ChatHandlers(SimpleNamespace(settings=Settings(llm_api_key="sk-test")), make_i18n()).notice(EN)
    assert hidden.visible is False and not hidden.value


def notice_component(config: dict) -> dict:
    [component] = [c for c in config["components"] if c.get("props", {}).get("elem_id") == "lingxi-provider-notice"]
    return component


def test_the_page_shows_the_notice_only_on_the_offline_model(lingxi):
    assert notice_component(build_ui(lingxi).get_config_file())["props"]["visible"] is False  # a key is set
    lingxi.settings = bundled()
    assert notice_component(build_ui(lingxi).get_config_file())["props"]["visible"] is True
