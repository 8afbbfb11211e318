"""The chat UI's strings in English and Chinese, and the helpers that pick them.

Two kinds of text live here:

* labels of components (buttons, boxes): Gradio translates these in the
  browser from ``make_i18n()``'s tables, following the browser's language;
* text the server puts into the chat (step titles, usage, errors): Gradio does
  not translate chat message content, so handlers pick the language from the
  request's ``Accept-Language`` with ``pick_lang`` and format it with ``text``.

The English error texts are not copied here: they are read from the server's
own tables (``assistant.providers.MESSAGES``, ``assistant.agent.AGENT_MESSAGES``)
so the two can never drift. This module renders nothing and does no I/O.
"""

from __future__ import annotations

import re
from functools import cache

import gradio as gr

from assistant.agent import AGENT_MESSAGES
from assistant.providers import MESSAGES as PROVIDER_MESSAGES

LANGS = ("en", "zh")  # what the server renders; the browser tables add "zh-CN"
DEFAULT_LANG = "en"

_EN = {
    # Component labels (translated in the browser).
    "app_title": "Lingxi",
    "new_chat": "➕ New chat",
    "search": "Search",
    "search_placeholder": "Search titles and messages",
    "conversations": "Conversations",
    "title": "Title",
    "rename": "Rename",
    "delete": "Delete",
    "confirm_delete": "Click again to delete",
    "chat": "Chat",
    "message_placeholder": "Ask Lingxi anything… (Enter to send, Shift+Enter for a new line)",
    "send": "Send",
    "stop": "Stop",
    "retry": "Retry",
    "settings": "Model settings",
    "base_url": "Provider base URL",
    "base_url_info": "OpenAI-compatible endpoint. The API key stays on the server.",
    "model": "Model",
    "model_info": "Pick one or type another model name.",
    "temperature": "Temperature",
    "temperature_info": "0.1–0.3 for facts, 0.7–1.0 for creative writing; thinking models ignore it.",
    # Text the server writes into the chat and the usage line.
    "thinking": "💭 Thinking",
    "tool_arguments": "Arguments",
    "tool_result": "Result",
    "tool_failed": "failed",
    "tool_repeated": "repeated call, skipped",
    "tool_running": "running…",
    "stopped": "⏹ Stopped.",
    "error_prefix": "⚠️ Error",
    "retry_hint": "Press **Retry** to try again.",
    "unanswered": "No reply yet. Press **Retry** to ask again.",
    "retrying": "Provider busy ({code}); retry {attempt} in {delay} s…",
    "usage": "Tokens: in {prompt} · out {completion} · cache hit {hit} · cost {cost} {currency}",
    "usage_empty": "Tokens: none yet",
    "untitled": "(untitled)",
    "busy": "A reply is still streaming in this conversation. Stop it first.",
    "nothing_selected": "Select a conversation first.",
    "title_empty": "The title must not be empty.",
    "bad_base_url": "The base URL must start with http:// or https://.",
}

_ZH = {
    "app_title": "灵犀",
    "new_chat": "➕ 新对话",
    "search": "搜索",
    "search_placeholder": "搜索标题和消息",
    "conversations": "对话",
    "title": "标题",
    "rename": "重命名",
    "delete": "删除",
    "confirm_delete": "再点一次确认删除",
    "chat": "对话",
    "message_placeholder": "问灵犀任何事……（Enter 发送，Shift+Enter 换行）",
    "send": "发送",
    "stop": "停止",
    "retry": "重试",
    "settings": "模型设置",
    "base_url": "服务商 Base URL",
    "base_url_info": "兼容 OpenAI 的接口地址。API 密钥只保存在服务器上。",
    "model": "模型",
    "model_info": "可选择，也可输入其他模型名。",
    "temperature": "温度",
    "temperature_info": "事实类回答用 0.1–0.3，创作用 0.7–1.0；思考模型会忽略此项。",
    "thinking": "💭 思考",
    "tool_arguments": "参数",
    "tool_result": "结果",
    "tool_failed": "失败",
    "tool_repeated": "重复调用，已跳过",
    "tool_running": "运行中……",
    "stopped": "⏹ 已停止。",
    "error_prefix": "⚠️ 出错了",
    "retry_hint": "点击 **重试** 再试一次。",
    "unanswered": "还没有回复。点击 **重试** 重新提问。",
    "retrying": "服务商繁忙（{code}），{delay} 秒后第 {attempt} 次重试……",
    "usage": "Token：输入 {prompt} · 输出 {completion} · 缓存命中 {hit} · 费用 {cost} {currency}",
    "usage_empty": "Token：暂无",
    "untitled": "（无标题）",
    "busy": "这个对话还在生成回复，请先停止。",
    "nothing_selected": "请先选择一个对话。",
    "title_empty": "标题不能为空。",
    "bad_base_url": "Base URL 必须以 http:// 或 https:// 开头。",
    # Errors by code; placeholders match the English texts of the server.
    "error.provider.bad_request": "模型服务商拒绝了请求（400）：{detail}",
    "error.provider.auth": "模型服务商拒绝了 API 密钥（401）。请检查 LINGXI_LLM_API_KEY。",
    "error.provider.balance": "模型服务商账户余额不足（402）。请充值后重试。",
    "error.provider.forbidden": "模型服务商拒绝访问（403）：{detail}",
    "error.provider.not_found": "找不到该模型或接口（404）。请检查 LINGXI_LLM_MODEL 和 LINGXI_LLM_BASE_URL。",
    "error.provider.invalid_params": "模型服务商认为参数无效（422）：{detail}",
    "error.provider.rate_limited": "模型服务商正在限流（429），重试次数已用完。请稍后再试。",
    "error.provider.unavailable": "模型服务商出错（{detail}），重试次数已用完。请稍后再试。",
    "error.provider.timeout": "模型服务商没有及时响应。请重试。",
    "error.provider.connection": "无法连接模型服务商 {detail}。请检查网络或 LINGXI_LLM_BASE_URL。",
    "error.provider.no_key": "尚未设置 API 密钥。请设置 LINGXI_LLM_API_KEY（或 DEEPSEEK_API_KEY）后重启。",
    "error.provider.protocol": "模型服务商返回了灵犀无法读取的内容：{detail}",
    "error.agent.empty": "消息为空。",
    "error.agent.too_long": "消息太长：{detail} 个字符，上限是 {limit}。",
    "error.agent.not_found": "没有这个对话。",
    "error.agent.nothing_to_retry": "没有可重试的内容：上一条回复已经完整。",
    "error.agent.max_steps": "执行了 {detail} 步仍没有最终回答，已停止。",
}

_ERROR_SOURCES = {"provider": PROVIDER_MESSAGES, "agent": AGENT_MESSAGES}


@cache
def _tables() -> dict[str, dict[str, str]]:
    en = dict(_EN)
    for scope, source in _ERROR_SOURCES.items():
        en.update({f"error.{scope}.{code}": template for code, template in source.items()})
    return {"en": en, "zh": dict(_ZH)}


def translations() -> dict[str, dict[str, str]]:
    """Every language's table, keyed by browser locale (a fresh copy each call)."""
    tables = _tables()
    # "zh-CN" is what Chinese browsers report; "zh" catches zh-SG and friends.
    return {"en": dict(tables["en"]), "zh-CN": dict(tables["zh"]), "zh": dict(tables["zh"])}


def make_i18n() -> gr.I18n:
    """The translations for Gradio; pass to ``mount_gradio_app(..., i18n=...)``."""
    return gr.I18n(**translations())


def pick_lang(accept_language: str | None) -> str:
    """"zh" or "en" from an Accept-Language header.

    Follows only the first preference, as Gradio's browser side does with
    ``navigator.language``, so chat text and labels agree.
    """
    first = (accept_language or "").split(",")[0].split(";")[0].strip().lower()
    return "zh" if first.split("-")[0] == "zh" else DEFAULT_LANG


def text(lang: str, key: str, **values: object) -> str:
    """The string for ``key`` in ``lang`` (English when missing), formatted."""
    tables = _tables()
    template = tables.get(lang, {}).get(key) or tables[DEFAULT_LANG][key]
    return template.format(**values) if values else template


@cache
def _pattern(template: str) -> re.Pattern[str]:
    # "{detail}" in a server template becomes a named group, so the detail can
    # be carried over into the translation.
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.*?)" for i, p in enumerate(parts))
    return re.compile(regex, re.S)


def translate_error(code: str, message: str, lang: str) -> str:
    """An error for the chat, in ``lang``; the server's English text is the fallback.

    ``code`` may be empty (stored messages keep only the text).

    The server sends a code and an English message with any detail (an HTTP
    status, a URL) already filled in. The detail is recovered by matching the
    English template, then put into the translated one. Codes shared by the
    provider and the agent (``not_found``) are told apart by that match too.
    """
    tables = _tables()
    if code:
        keys = [f"error.{scope}.{code}" for scope in _ERROR_SOURCES if f"error.{scope}.{code}" in tables["en"]]
    else:  # a stored error keeps only its text: try every template
        keys = [key for key in tables["en"] if key.startswith("error.")]
    for key in keys:
        match = _pattern(tables["en"][key]).fullmatch(message.strip())
        if match:
            return text(lang, key, **match.groupdict())
    if code and not message and keys and not _pattern(tables["en"][keys[0]]).groupindex:
        return text(lang, keys[0])
    return message or code
