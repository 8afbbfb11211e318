"""The chat UI's strings in English and Chinese, and the helpers that pick them.

Two kinds of text live here:

* labels of components (buttons, boxes): Gradio translates these in the
  browser from ``make_i18n()``'s tables, following the browser's language;
* text the server puts into the chat (step titles, usage, errors): Gradio does
  not translate chat message content, so handlers pick the language from the
  request's ``Accept-Language`` with ``pick_lang`` and format it with ``text``.

The English error texts are not copied here: they are read from the server's
own tables (``assistant.providers.MESSAGES``, ``assistant.agent.AGENT_MESSAGES``)
so the two can never drift. The admin tabs' strings are in ``ui.i18n_admin``.
This module renders nothing and does no I/O.
"""

from __future__ import annotations

import re
from functools import cache

import gradio as gr

from assistant.agent import AGENT_MESSAGES
from assistant.providers import MESSAGES as PROVIDER_MESSAGES
from ui.i18n_admin import ADMIN_EN, ADMIN_ZH

LANGS = ("en", "zh")  # what the server renders; the browser tables add "zh-CN"
DEFAULT_LANG = "en"

_EN = {
    # Component labels (translated in the browser).
    "app_title": "Lingxi",
    "sign_out": "Sign out",
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
    "sources": "📎 Sources",
    "source_page": "(p. {page})",
    "stopped": "⏹ Stopped.",
    "error_prefix": "⚠️ Error",
    "retry_hint": "Press **Retry** to try again.",
    "unanswered": "No reply yet. Press **Retry** to ask again.",
    "retrying": "Provider busy ({code}); retry {attempt} in {delay} s…",
    "usage": "Tokens: in {prompt} · out {completion} · cache hit {hit} · cost {cost} {currency}",
    "usage_empty": "Tokens: none yet",
    "offline_bundled": (
        "⚠️ **Offline mode: the small built-in model is answering.** No API key is configured, so Lingxi "
        "uses its bundled offline model, which runs on this computer but has limited abilities (short, "
        "simpler answers; weaker at tools and reasoning). To switch to DeepSeek, put "
        "`LINGXI_LLM_API_KEY=sk-…` (or `DEEPSEEK_API_KEY`) in `.env` and restart Lingxi; "
        "`LINGXI_LLM_PROVIDER` and `LINGXI_LLM_BASE_URL` choose another provider."
    ),
    "offline_local": (
        "ℹ️ **Offline mode: the local model `{model}` is answering** on this computer. "
        "To switch to DeepSeek, put `LINGXI_LLM_API_KEY=sk-…` (or `DEEPSEEK_API_KEY`) in `.env`, "
        "unset `LINGXI_LLM_PROVIDER=local` if set, and restart Lingxi."
    ),
    "untitled": "(untitled)",
    "busy": "A reply is still streaming in this conversation. Stop it first.",
    "nothing_selected": "Select a conversation first.",
    "title_empty": "The title must not be empty.",
    "bad_base_url": "The base URL must start with http:// or https://.",
    # The Agenda and Reminders tabs and the inbox (ui.schedule, ui.inbox).
    "tab_chat": "💬 Chat",
    "tab_agenda": "📅 Agenda",
    "tab_reminders": "⏰ Reminders",
    "inbox": "Inbox",
    "mark_all_read": "Mark all read",
    "inbox_empty": "No notifications yet.",
    "late": "late",
    "toast_title": "Reminder",
    "range": "Show",
    "range_today": "Today",
    "range_week": "This week",
    "range_30d": "Next 30 days",
    "refresh": "🔄 Refresh",
    "col_date": "Date",
    "col_time": "Time",
    "col_title": "Title",
    "col_location": "Location",
    "col_repeats": "Repeats",
    "col_id": "ID",
    "col_text": "Reminder",
    "col_due": "Next time",
    "col_channels": "Channels",
    "col_status": "Status",
    "col_error": "Last error",
    "select_event": "Selected event",
    "select_reminder": "Selected reminder",
    "select_info": "Click a row in the table or pick one here; Create ignores the selection.",
    "start": "Start",
    "end": "End (optional)",
    "all_day": "All day",
    "location": "Location",
    "notes": "Notes",
    "timezone": "Time zone",
    "timezone_info": "IANA name, e.g. Asia/Shanghai",
    "when": "When",
    "when_info": "ISO-8601 or plain words: 2025-05-01T15:00, 明天下午三点, every Monday 9am",
    "reminder_text": "Remind me to",
    "channels": "Deliver to",
    "channel.inapp": "In-app",
    "channel.webhook": "Webhook",
    "channel.email": "E-mail",
    "webhook_url": "Webhook URL (optional)",
    "email_to": "E-mail address (optional)",
    "create": "➕ Create",
    "save": "💾 Save changes",
    "cancel_reminder": "Cancel reminder",
    "retry_delivery": "🔁 Retry delivery",
    "weekdays": "Mon Tue Wed Thu Fri Sat Sun",
    "repeat.hourly": "hourly",
    "repeat.daily": "daily",
    "repeat.weekly": "weekly",
    "repeat.monthly": "monthly",
    "repeat.yearly": "yearly",
    "status.scheduled": "scheduled",
    "status.sent": "sent",
    "status.late": "sent late",
    "status.failed": "failed",
    "status.cancelled": "cancelled",
    "event_created": "✅ Created “{title}” at {when}.",
    "event_saved": "✅ Saved “{title}” at {when}.",
    "event_deleted": "🗑 Deleted “{title}”; {count} linked reminder(s) cancelled.",
    "overlaps": "⚠️ Overlaps with {items}",
    "reminder_created": "✅ Reminder “{text}” set for {when}.",
    "reminder_saved": "✅ Reminder “{text}” saved; next time {when}.",
    "reminder_cancelled": "🗑 Reminder “{text}” cancelled.",
    "reminder_retried": "🔁 Reminder “{text}” will be delivered again shortly.",
    "select_event_first": "Select an event first.",
    "select_reminder_first": "Select a reminder first.",
    "not_saved": "⚠️ Nothing was saved: {reason}",
    # What went wrong with a typed time, by tools.timeparse's error code; used
    # when its message (in the language of the input) isn't in the UI's language.
    "time.unparsed": "couldn't read the time",
    "time.ambiguous": "the time is ambiguous",
    "time.past": "that time has passed",
    "time.impossible": "no such date or time",
    "time.bad_timezone": "unknown time zone",
    "time.never": "the recurrence never occurs",
    # ScheduleError texts of assistant.reminders / assistant.events, which raise
    # them without a code; tests/ui/test_schedule_ui.py checks they still match.
    "error.schedule.unknown_zone": "unknown time zone {name}; use an IANA name such as Asia/Shanghai",
    "error.schedule.unknown_channel": "unknown channel(s) {channels}; choose from {choices}",
    "error.schedule.webhook_url": "the webhook channel needs a URL (per reminder, or LINGXI_WEBHOOK_URL)",
    "error.schedule.email_to": "the email channel needs an address (per reminder, or LINGXI_NOTIFY_EMAIL)",
    "error.schedule.bad_email": "{address} is not an e-mail address",
    "error.schedule.needs_time": "a reminder needs a time",
    "error.schedule.past": "{when} is in the past; ask the user for a future time",
    "error.schedule.bad_rrule": "invalid recurrence: {detail}",
    "error.schedule.no_occurrence": "the recurrence has no occurrence after now",
    "error.schedule.needs_text": "a reminder needs some text",
    "error.schedule.text_too_long": "the reminder text is too long ({length} characters, at most {limit})",
    "error.schedule.lead": "lead time must be between 0 minutes and 30 days",
    "error.schedule.no_event": "no event with id {id}",
    "error.schedule.no_reminder": "no reminder with id {id}",
    "error.schedule.cancelled": "this reminder is cancelled; create a new one",
    "error.schedule.only_failed": "only a failed reminder can be retried",
    "error.schedule.needs_title": "an event needs a title",
    "error.schedule.title_too_long": "the title is too long (at most {limit} characters)",
    "error.schedule.end_before_start": "the event must end after it starts",
    "error.schedule.bad_range": "the end of the range must be after its start",
}

_ZH = {
    "app_title": "灵犀",
    "sign_out": "退出登录",
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
    "sources": "📎 来源",
    "source_page": "（第 {page} 页）",
    "stopped": "⏹ 已停止。",
    "error_prefix": "⚠️ 出错了",
    "retry_hint": "点击 **重试** 再试一次。",
    "unanswered": "还没有回复。点击 **重试** 重新提问。",
    "retrying": "服务商繁忙（{code}），{delay} 秒后第 {attempt} 次重试……",
    "usage": "Token：输入 {prompt} · 输出 {completion} · 缓存命中 {hit} · 费用 {cost} {currency}",
    "usage_empty": "Token：暂无",
    "offline_bundled": (
        "⚠️ **离线模式：当前由内置的小型离线模型回答。** 尚未配置 API 密钥，灵犀正在使用随附的离线模型："
        "它在本机运行，但能力有限（回答较短较简单，工具调用和推理较弱）。要切换到 DeepSeek，请在 `.env` 中写入 "
        "`LINGXI_LLM_API_KEY=sk-…`（或 `DEEPSEEK_API_KEY`）并重启灵犀；"
        "也可用 `LINGXI_LLM_PROVIDER` 和 `LINGXI_LLM_BASE_URL` 选择其他服务。"
    ),
    "offline_local": (
        "ℹ️ **离线模式：当前由本地模型 `{model}` 在本机回答。** "
        "要切换到 DeepSeek，请在 `.env` 中写入 `LINGXI_LLM_API_KEY=sk-…`（或 `DEEPSEEK_API_KEY`），"
        "如设置了 `LINGXI_LLM_PROVIDER=local` 请去掉，然后重启灵犀。"
    ),
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
    "tab_chat": "💬 对话",
    "tab_agenda": "📅 日程",
    "tab_reminders": "⏰ 提醒",
    "inbox": "收件箱",
    "mark_all_read": "全部标为已读",
    "inbox_empty": "还没有通知。",
    "late": "迟到",
    "toast_title": "提醒",
    "range": "范围",
    "range_today": "今天",
    "range_week": "本周",
    "range_30d": "未来 30 天",
    "refresh": "🔄 刷新",
    "col_date": "日期",
    "col_time": "时间",
    "col_title": "标题",
    "col_location": "地点",
    "col_repeats": "重复",
    "col_id": "ID",
    "col_text": "提醒内容",
    "col_due": "下次时间",
    "col_channels": "渠道",
    "col_status": "状态",
    "col_error": "最近错误",
    "select_event": "选中的日程",
    "select_reminder": "选中的提醒",
    "select_info": "点击表格中的一行，或在这里选择；“新建”不受选择影响。",
    "start": "开始",
    "end": "结束（可选）",
    "all_day": "全天",
    "location": "地点",
    "notes": "备注",
    "timezone": "时区",
    "timezone_info": "IANA 时区名，例如 Asia/Shanghai",
    "when": "时间",
    "when_info": "ISO-8601 或自然语言：2025-05-01T15:00、明天下午三点、每周一早上9点",
    "reminder_text": "提醒内容",
    "channels": "提醒方式",
    "channel.inapp": "站内",
    "channel.webhook": "Webhook",
    "channel.email": "邮件",
    "webhook_url": "Webhook URL（可选）",
    "email_to": "邮箱地址（可选）",
    "create": "➕ 新建",
    "save": "💾 保存修改",
    "cancel_reminder": "取消提醒",
    "retry_delivery": "🔁 重新投递",
    "weekdays": "周一 周二 周三 周四 周五 周六 周日",
    "repeat.hourly": "每小时",
    "repeat.daily": "每天",
    "repeat.weekly": "每周",
    "repeat.monthly": "每月",
    "repeat.yearly": "每年",
    "status.scheduled": "待提醒",
    "status.sent": "已发送",
    "status.late": "已发送（迟到）",
    "status.failed": "失败",
    "status.cancelled": "已取消",
    "event_created": "✅ 已创建「{title}」：{when}。",
    "event_saved": "✅ 已保存「{title}」：{when}。",
    "event_deleted": "🗑 已删除「{title}」，取消了 {count} 个关联提醒。",
    "overlaps": "⚠️ 与这些日程时间重叠：{items}",
    "reminder_created": "✅ 已设置提醒「{text}」：{when}。",
    "reminder_saved": "✅ 已保存提醒「{text}」，下次时间 {when}。",
    "reminder_cancelled": "🗑 已取消提醒「{text}」。",
    "reminder_retried": "🔁 提醒「{text}」稍后会重新投递。",
    "select_event_first": "请先选择一个日程。",
    "select_reminder_first": "请先选择一个提醒。",
    "not_saved": "⚠️ 未保存：{reason}",
    "time.unparsed": "无法识别这个时间",
    "time.ambiguous": "时间有歧义",
    "time.past": "这个时间已经过去",
    "time.impossible": "没有这个日期或时间",
    "time.bad_timezone": "未知时区",
    "time.never": "这个重复规则不会出现",
    "error.schedule.unknown_zone": "未知时区 {name}；请使用 IANA 时区名，例如 Asia/Shanghai。",
    "error.schedule.unknown_channel": "未知的提醒方式 {channels}；可选：{choices}。",
    "error.schedule.webhook_url": "Webhook 方式需要一个 URL（填在提醒里，或设置 LINGXI_WEBHOOK_URL）。",
    "error.schedule.email_to": "邮件方式需要一个邮箱地址（填在提醒里，或设置 LINGXI_NOTIFY_EMAIL）。",
    "error.schedule.bad_email": "{address} 不是有效的邮箱地址。",
    "error.schedule.needs_time": "提醒需要一个时间。",
    "error.schedule.past": "{when} 已经过去了，请填写一个将来的时间。",
    "error.schedule.bad_rrule": "重复规则无效：{detail}",
    "error.schedule.no_occurrence": "这个重复规则在现在之后不会再出现。",
    "error.schedule.needs_text": "提醒内容不能为空。",
    "error.schedule.text_too_long": "提醒内容太长（{length} 个字符，上限 {limit}）。",
    "error.schedule.lead": "提前量必须在 0 分钟到 30 天之间。",
    "error.schedule.no_event": "没有 id 为 {id} 的日程。",
    "error.schedule.no_reminder": "没有 id 为 {id} 的提醒。",
    "error.schedule.cancelled": "这个提醒已取消，请新建一个。",
    "error.schedule.only_failed": "只有投递失败的提醒才能重试。",
    "error.schedule.needs_title": "日程需要一个标题。",
    "error.schedule.title_too_long": "标题太长（上限 {limit} 个字符）。",
    "error.schedule.end_before_start": "结束时间必须晚于开始时间。",
    "error.schedule.bad_range": "范围的结束必须晚于开始。",
}

_ERROR_SOURCES = {"provider": PROVIDER_MESSAGES, "agent": AGENT_MESSAGES}


@cache
def _tables() -> dict[str, dict[str, str]]:
    en = {**_EN, **ADMIN_EN}
    for scope, source in _ERROR_SOURCES.items():
        en.update({f"error.{scope}.{code}": template for code, template in source.items()})
    return {"en": en, "zh": {**_ZH, **ADMIN_ZH}}


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


def lang_of(request) -> str:
    """"zh" or "en" for a Gradio request's Accept-Language (DEFAULT_LANG without one)."""
    headers = getattr(request, "headers", None) or {}
    return pick_lang(headers.get("accept-language")) if headers else DEFAULT_LANG


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
