"""The chat UI's pure parts: history and stream rendering, errors in both languages, i18n tables.

No browser here; ``test_chat_browser.py`` drives the real page.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import string
from types import SimpleNamespace

import gradio as gr
import pytest

from assistant import conversations as convs
from assistant.agent import AGENT_MESSAGES
from assistant.conversations import Usage
from assistant.providers import MESSAGES, ProviderError
from assistant.streaming import Event
from tests.fakes.openai_server import Reply
from ui.chat_render import Step, conversation_choices, fold, history_steps, render, safe_markdown, split_think, usage_text
from ui.chat_settings import default_prefs
from ui.i18n import make_i18n, pick_lang, text, translate_error, translations


def titles(messages: list[dict]) -> list[str | None]:
    return [(m.get("metadata") or {}).get("title") for m in messages]


def stored(role: str, content: str = "", **extra) -> dict:
    """A message shaped like ``conversations.as_dict``."""
    base = {"role": role, "content": content, "reasoning_content": None, "tool_calls": None,
            "tool_call_id": None, "name": None, "status": "complete", "error": None}
    return {**base, **extra}


TOOL_TURN = [
    stored("user", "现在几点？"),
    stored("assistant", "", reasoning_content="Need the clock.", tool_calls=[
        {"id": "c1", "type": "function",
         "function": {"name": "current_time", "arguments": '{"timezone": "Asia/Shanghai"}'}}
    ]),
    stored("tool", '{"iso": "2025-01-01T15:00:00+08:00"}', tool_call_id="c1", name="current_time"),
    stored("assistant", "现在是**下午三点**。"),
]


# --- History -------------------------------------------------------------------


def test_history_shows_reasoning_and_tool_steps_collapsed():
    out = render(history_steps(TOOL_TURN), "en")
    assert [m["role"] for m in out] == ["user", "assistant", "assistant", "assistant"]
    assert titles(out) == [None, "💭 Thinking", "🛠️ current_time", None]
    reasoning, tool, answer = out[1], out[2], out[3]
    assert reasoning["metadata"]["status"] == "done" and reasoning["content"] == "Need the clock."
    assert tool["metadata"]["status"] == "done"
    assert '"timezone": "Asia/Shanghai"' in tool["content"]  # arguments, pretty-printed
    assert "2025-01-01T15:00:00+08:00" in tool["content"]  # result
    assert "**Arguments**" in tool["content"] and "**Result**" in tool["content"]
    assert answer == {"role": "assistant", "content": "现在是**下午三点**。"}


def test_history_titles_follow_the_language():
    out = render(history_steps(TOOL_TURN), "zh")
    assert titles(out)[1] == "💭 思考"
    assert "**参数**" in out[2]["content"] and "**结果**" in out[2]["content"]


def test_history_marks_stopped_failed_and_unanswered_turns():
    messages = [
        stored("user", "hi"),
        stored("assistant", "partial", status="stopped"),
        stored("user", "again"),
        stored("assistant", "half", status="error", error=str(ProviderError("unavailable", "HTTP 503"))),
        stored("user", "third"),
    ]
    out = render(history_steps(messages), "zh")
    contents = [m["content"] for m in out]
    assert contents[2] == "*⏹ 已停止。*"
    assert "模型服务商出错（HTTP 503）" in contents[5]  # stored English text, shown translated
    assert "重试" in contents[5]
    assert "还没有回复" in contents[-1]  # the last turn has no answer: point at Retry
    # While a reply to it is streaming, the notice is left out.
    assert "还没有回复" not in render(history_steps(messages, answering=True), "zh")[-1]["content"]


def test_failed_tool_result_is_flagged():
    messages = [*TOOL_TURN[:2], stored("tool", '{"error": "boom"}', tool_call_id="c1", status="error")]
    tool = render(history_steps(messages), "en")[2]
    assert tool["metadata"]["log"] == "failed"


def test_history_from_the_real_store(lingxi):
    """``as_dict`` output (what the UI handlers pass) renders as expected."""
    with lingxi.db.session() as s:
        conv = convs.create(session=s)
        convs.add_message(conv.id, session=s, role="user", content="几点了")
        convs.add_message(conv.id, session=s, role="assistant", reasoning_content="think", tool_calls=[
            {"id": "t1", "type": "function", "function": {"name": "current_time", "arguments": "{}"}}
        ], usage=Usage(prompt_tokens=10, completion_tokens=2))
        convs.add_message(conv.id, session=s, role="tool", content='{"iso": "x"}', tool_call_id="t1",
                          name="current_time")
        convs.add_message(conv.id, session=s, role="assistant", content="三点。")
        messages = [convs.as_dict(m) for m in convs.messages(conv.id, session=s)]
    out = render(history_steps(messages), "zh")
    assert titles(out) == [None, "💭 思考", "🛠️ current_time", None]
    assert out[-1]["content"] == "三点。"


# --- Streaming -------------------------------------------------------------------


def stream(*events: Event) -> list[Step]:
    steps: list[Step] = []
    for event in events:
        fold(steps, event)
    return steps


def test_events_fold_into_reasoning_tool_step_and_answer():
    call = {"id": "call_1", "name": "current_time"}
    steps = stream(Event("reasoning", {"text": "Let me "}), Event("reasoning", {"text": "check."}))
    live = render(steps, "en")
    assert len(live) == 1 and live[0]["content"] == "Let me check."
    assert live[0]["metadata"]["status"] == "pending"  # open, with a spinner, while thinking

    for event in (
        Event("tool_call", {"phase": "delta", "index": 0, **call, "arguments": '{"time'}),
        Event("tool_call", {"phase": "delta", "index": 0, **call, "arguments": '{"timezone": "UTC"}'}),
        Event("usage", {"message": {}, "conversation": {}}),
        Event("tool_call", {"phase": "call", **call, "arguments": '{"timezone": "UTC"}'}),
    ):
        fold(steps, event)
    live = render(steps, "en")
    assert titles(live) == ["💭 Thinking", "🛠️ current_time"]
    assert live[0]["metadata"]["status"] == "done"
    assert live[1]["metadata"]["status"] == "pending" and live[1]["metadata"]["log"] == "running…"

    for event in (
        Event("tool_result", {**call, "ok": True, "content": '{"iso": "15:00"}', "repeated": False}),
        Event("delta", {"text": "It is "}),
        Event("delta", {"text": "3 pm."}),
        Event("done", {"conversation_id": "x", "stopped": False}),
    ):
        fold(steps, event)
    final = render(steps, "en")
    assert titles(final) == ["💭 Thinking", "🛠️ current_time", None]
    assert final[1]["metadata"]["status"] == "done" and '"iso": "15:00"' in final[1]["content"]
    assert final[2] == {"role": "assistant", "content": "It is 3 pm."}


def test_tool_calls_without_ids_are_not_duplicated():
    steps = stream(
        Event("tool_call", {"phase": "delta", "index": 0, "id": "", "name": "current_time", "arguments": ""}),
        Event("tool_call", {"phase": "delta", "index": 1, "id": "", "name": "search_conversations", "arguments": ""}),
        Event("tool_call", {"phase": "call", "id": "call_0", "name": "current_time", "arguments": "{}"}),
        Event("tool_call", {"phase": "call", "id": "call_1", "name": "search_conversations", "arguments": "{}"}),
        Event("tool_result", {"id": "call_1", "name": "search_conversations", "ok": True, "content": "[]"}),
        Event("tool_result", {"id": "call_0", "name": "current_time", "ok": True, "content": "{}"}),
    )
    assert [(s.name, s.call_id, s.result) for s in steps] == [
        ("current_time", "call_0", "{}"), ("search_conversations", "call_1", "[]")
    ]


def test_text_after_a_tool_call_starts_a_new_bubble():
    steps = stream(
        Event("delta", {"text": "Checking."}),
        Event("tool_call", {"phase": "call", "id": "a", "name": "current_time", "arguments": "{}"}),
        Event("tool_result", {"id": "a", "name": "current_time", "ok": True, "content": "{}"}),
        Event("delta", {"text": "Done."}),
    )
    assert [s.kind for s in steps] == ["answer", "tool", "answer"]


def test_retry_notice_lasts_until_the_provider_answers():
    steps = stream(Event("retry", {"attempt": 1, "delay": 0.5, "code": "rate_limited"}))
    (notice,) = render(steps, "zh")
    assert notice["metadata"]["status"] == "pending"
    assert "第 1 次重试" in notice["metadata"]["title"] and "0.5" in notice["metadata"]["title"]
    fold(steps, Event("delta", {"text": "ok"}))
    assert render(steps, "zh") == [{"role": "assistant", "content": "ok"}]


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("en", "The model provider rejected the API key (401)"), ("zh", "模型服务商拒绝了 API 密钥（401）")],
)
def test_error_event_is_translated_and_points_at_retry(lang, expected):
    err = ProviderError("auth", "bad key", status=401)
    steps = stream(
        Event("delta", {"text": "part"}), Event("error", {"code": err.code, "message": str(err), "status": 401})
    )
    out = render(steps, lang)
    assert out[0]["content"] == "part"
    assert expected in out[1]["content"]
    assert text(lang, "retry_hint") in out[1]["content"]


def test_stopped_reply_is_marked():
    steps = stream(Event("delta", {"text": "half"}), Event("done", {"conversation_id": "x", "stopped": True}))
    assert render(steps, "en")[-1]["content"] == "*⏹ Stopped.*"


# --- Safety of rendered text ------------------------------------------------------------


def test_raw_html_is_shown_as_text_but_code_is_untouched():
    body = 'Hi <img src=x onerror=alert(1)> `<b>` done\n```html\n<div>x</div>\n```\n<script>y</script>'
    out = safe_markdown(body)
    assert "<img" not in out and "&lt;img src=x" in out
    assert "`<b>`" in out  # inside an inline code span
    assert "```html\n<div>x</div>\n```" in out  # inside a fenced block
    assert "&lt;script>y&lt;/script>" in out


def test_an_unclosed_fence_while_streaming_stays_code():
    assert safe_markdown("x <a>\n```\n<b>") == "x &lt;a>\n```\n<b>"


def test_think_tags_never_reach_the_reader():
    assert split_think("<think>plan</think>\nAnswer <b>") == ("plan", "Answer <b>")
    steps = stream(Event("delta", {"text": "Sure. <think>hidden"}), Event("delta", {"text": " plan</think>Done."}))
    out = render(steps, "en")
    assert all("think>" not in m["content"] for m in out)
    assert titles(out) == ["💭 Thinking", None]
    assert out[0]["content"] == "hidden plan" and out[1]["content"] == "Sure. Done."


def test_tool_results_with_backticks_cannot_break_out_of_their_block():
    steps = stream(Event("tool_result", {"id": "a", "name": "t", "ok": True, "content": "```\n<b>x</b>"}))
    body = render(steps, "en")[0]["content"]
    assert "````json\n```\n<b>x</b>\n````" in body


# --- Knowledge-base sources ------------------------------------------------------------------


PASSAGES = [
    {"ref": 1, "doc_id": "d1", "source": "returns.md", "title": "Returns", "section": "Returns", "page": 3,
     "score": 0.82, "text": "Unused items can be returned within 30 days."},
    {"ref": 2, "doc_id": "d2", "source": "shipping.md", "title": "Shipping", "section": None, "page": None,
     "score": 0.61, "text": "Orders ship in 2 days."},
    {"ref": 3, "doc_id": "d3", "source": "faq.md", "title": "FAQ", "section": "Refunds", "page": None,
     "score": 0.55, "text": "Refunds take a week."},
]


def kb_result(passages: list[dict]) -> str:
    return json.dumps({"passages": passages, "instruction": "Answer only from these passages."}, ensure_ascii=False)


def kb_events(answer: str, passages: list[dict] = PASSAGES, *, call_id: str = "kb1") -> list[Event]:
    """What the agent streams for one knowledge-base turn (tool result, citations, answer)."""
    call = {"id": call_id, "name": "search_knowledge_base"}
    return [
        Event("tool_call", {"phase": "call", **call, "arguments": '{"query": "returns"}'}),
        Event("tool_result", {**call, "ok": True, "content": kb_result(passages), "repeated": False}),
        *(Event("citation", p) for p in passages),
        Event("delta", {"text": answer}),
        Event("done", {"conversation_id": "x", "stopped": False}),
    ]


def kb_messages(question: str, answer: str, passages: list[dict] = PASSAGES, *, call_id: str = "kb1") -> list[dict]:
    """The same turn as the agent stores it."""
    return [
        stored("user", question),
        stored("assistant", "", tool_calls=[{"id": call_id, "type": "function", "function": {
            "name": "search_knowledge_base", "arguments": '{"query": "returns"}'}}]),
        stored("tool", kb_result(passages), tool_call_id=call_id, name="search_knowledge_base"),
        stored("assistant", answer),
    ]


def sources_of(messages: list[dict], lang: str = "en") -> list[dict]:
    return [m for m in messages if (m.get("metadata") or {}).get("title") == text(lang, "sources")]


def summaries(message: dict) -> list[str]:
    """The visible label of each listed passage (entities decoded, as the browser shows them)."""
    return [html.unescape(label) for label in re.findall(r"<summary>(.*?)</summary>", message["content"])]


def test_citations_fold_into_a_sources_block_after_the_answer_listing_only_cited_passages():
    steps = stream(*kb_events("Within 30 days [1]; refunds take a week [3]."))
    out = render(steps, "en")
    assert titles(out) == ["🛠️ search_knowledge_base", None, "📎 Sources"]  # the tool step stays as it was
    sources = out[-1]
    assert sources["role"] == "assistant" and sources["metadata"]["status"] == "done"
    assert summaries(sources) == ["[1] returns.md › Returns (p. 3)", "[3] faq.md › Refunds"]
    # Each passage's text is under its label, in a collapsed <details>.
    assert sources["content"].count("<details>") == 2 and "<details open" not in sources["content"]
    assert "Unused items can be returned within 30 days." in html.unescape(sources["content"])
    assert "Orders ship" not in sources["content"]  # [2] is not cited
    zh = render(steps, "zh")
    assert titles(zh)[-1] == "📎 来源" and summaries(zh[-1])[0] == "[1] returns.md › Returns （第 3 页）"


def test_an_answer_citing_nothing_lists_every_passage():
    for answer in ("Returns are accepted within 30 days.", "See [7], which was not returned."):
        out = render(stream(*kb_events(answer)), "en")
        assert summaries(sources_of(out)[0]) == [
            "[1] returns.md › Returns (p. 3)", "[2] shipping.md", "[3] faq.md › Refunds"]


def test_grouped_citations_count():
    out = render(stream(*kb_events("Both [1, 2] say so; also [3]")), "en")
    assert len(summaries(sources_of(out)[0])) == 3
    out = render(stream(*kb_events("Both [1，2] say so.")), "en")
    assert [label[:3] for label in summaries(sources_of(out)[0])] == ["[1]", "[2]"]


def test_sources_wait_for_the_answer_and_skip_searches_without_passages():
    steps = stream(*kb_events("Within 30 days [1].")[:-2])
    assert sources_of(render(steps, "en")) == []  # no answer yet
    fold(steps, Event("delta", {"text": "Within 30 days [1]."}))
    assert sources_of(render(steps, "en")) == []  # still streaming: the cited list could change
    fold(steps, Event("done", {"conversation_id": "x", "stopped": False}))
    assert len(sources_of(render(steps, "en"))) == 1

    empty = json.dumps({"passages": [], "no_relevant_passage": True, "instruction": "Say you don't know."})
    steps = stream(
        Event("tool_call", {"phase": "call", "id": "k", "name": "search_knowledge_base", "arguments": "{}"}),
        Event("tool_result", {"id": "k", "name": "search_knowledge_base", "ok": True, "content": empty}),
        Event("delta", {"text": "I don't know; shall I pass this to a colleague?"}),
        Event("done", {"conversation_id": "x", "stopped": False}),
    )
    assert sources_of(render(steps, "en")) == []


def test_history_rebuilds_the_same_sources_as_the_live_stream():
    turns = [("kb1", "How do returns work?", "Within 30 days [1]."), ("kb2", "And shipping?", "It takes 2 days.")]
    messages = [m for call_id, question, answer in turns for m in kb_messages(question, answer, call_id=call_id)]
    live: list[Step] = []
    for call_id, question, answer in turns:
        live.append(Step("user", text=question, done=True))  # the handler adds the user's step itself
        for event in kb_events(answer, call_id=call_id):
            fold(live, event)
    for lang in ("en", "zh"):
        rebuilt = render(history_steps(messages), lang)
        assert rebuilt == render(live, lang)
        blocks = sources_of(rebuilt, lang)
        assert [len(summaries(b)) for b in blocks] == [1, 3]  # cited [1] only; then nothing cited: all
        assert titles(rebuilt).index(text(lang, "sources")) == 3  # right after the first answer


def test_passage_text_cannot_inject_html_or_load_images():
    evil = {**PASSAGES[0], "section": "<b>Returns</b>", "source": 'x"><img src=x onerror=alert(1)>.md',
            "text": "Policy.\n\n<script>alert(1)</script>\n![x](http://evil/x.png) [click](javascript:alert(1))\n"
                    "</details><img src=http://evil/y.png> $$x$$"}
    out = render(stream(*kb_events("See [1].", [evil])), "en")
    body = sources_of(out)[0]["content"]
    tags = re.findall(r"</?([a-zA-Z]+)", body)
    assert set(tags) == {"details", "summary", "br"}  # only the tags built here; none from the passage
    assert tags.count("details") == 2  # one <details> and its own closing tag
    assert "\n\n" not in body and "\n" not in body  # one line: markdown sees one raw-HTML block
    for unsafe in ("![", "](", "<script", "<img", "$$"):
        assert unsafe not in body  # no markdown image or link, no tag, no math
    # The reader still sees the text verbatim.
    shown = html.unescape(body.replace("<br>", "\n"))
    assert "<script>alert(1)</script>\n![x](http://evil/x.png)" in shown
    assert summaries(sources_of(out)[0]) == ['[1] x"><img src=x onerror=alert(1)>.md › <b>Returns</b> (p. 3)']


@pytest.mark.parametrize(
    "content",
    ["{not json", "", "null", "[1, 2]", '{"passages": 5}', '{"passages": "abc"}', '{"passages": {"ref": 1}}',
     '{"passages": [1, null, "x", {"text": "no ref"}]}', '{"passages": [{"ref": "one", "text": 7}]}'],
)
def test_malformed_search_results_in_history_do_not_crash(content):
    messages = kb_messages("q", "An answer [1].")
    messages[2]["content"] = content
    out = render(history_steps(messages), "en")
    assert titles(out)[1:3] == ["🛠️ search_knowledge_base", None]  # the tool step and answer still show
    if "one" in content:
        assert summaries(sources_of(out)[0]) == ["[one] ?"]  # odd but shown, escaped
    else:
        assert sources_of(out) == []


def test_failed_search_in_history_lists_no_sources():
    messages = kb_messages("q", "Sorry.")
    messages[2]["status"] = "error"
    assert sources_of(render(history_steps(messages), "en")) == []


# --- Errors and i18n ------------------------------------------------------------------


def test_error_translation_carries_the_detail():
    err = ProviderError("bad_request", "Missing reasoning_content")
    assert translate_error("bad_request", str(err), "zh") == "模型服务商拒绝了请求（400）：Missing reasoning_content"
    assert translate_error("bad_request", str(err), "en") == str(err)
    conn = ProviderError("connection", "http://127.0.0.1:9/v1")
    assert translate_error("connection", str(conn), "zh").startswith("无法连接模型服务商 http://127.0.0.1:9/v1。")


def test_agent_and_provider_not_found_are_told_apart():
    assert translate_error("not_found", AGENT_MESSAGES["not_found"], "zh") == "没有这个对话。"
    assert translate_error("not_found", MESSAGES["not_found"], "zh").startswith("找不到该模型或接口（404）")
    too_long = AGENT_MESSAGES["too_long"].format(detail="20001", limit=16000)
    assert translate_error("too_long", too_long, "zh") == "消息太长：20001 个字符，上限是 16000。"


def test_unknown_errors_fall_back_to_the_server_text():
    assert translate_error("brand_new", "Something new broke.", "zh") == "Something new broke."
    assert translate_error("auth", "", "zh").startswith("模型服务商拒绝了 API 密钥")
    assert translate_error("", str(ProviderError("timeout")), "zh") == "模型服务商没有及时响应。请重试。"


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_language_has_the_same_keys_and_placeholders():
    tables = translations()
    assert set(tables) == {"en", "zh-CN", "zh"}
    keys = set(tables["en"])
    for lang, table in tables.items():
        assert set(table) == keys, f"{lang}: missing {keys - set(table)}, extra {set(table) - keys}"
        for key, value in table.items():
            assert value.strip(), f"{lang}.{key} is empty"
            assert placeholders(value) == placeholders(tables["en"][key]), f"{lang}.{key}"


def test_every_server_error_code_has_a_translation():
    zh = translations()["zh"]
    for code in MESSAGES:
        assert f"error.provider.{code}" in zh
    for code in AGENT_MESSAGES:
        assert f"error.agent.{code}" in zh


def test_make_i18n_is_for_gradio():
    i18n = make_i18n()
    assert isinstance(i18n, gr.I18n)
    assert i18n.translations_dict["zh-CN"]["send"] == "发送"
    assert i18n.translations_dict["en"]["send"] == "Send"


@pytest.mark.parametrize(
    ("header", "lang"),
    [("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("zh", "zh"), ("zh-TW", "zh"), ("en-US,en;q=0.9", "en"),
     ("fr-FR,zh;q=0.5", "en"), ("", "en"), (None, "en")],
)
def test_pick_lang_follows_the_first_preference(header, lang):
    assert pick_lang(header) == lang


# --- Usage, list and settings ---------------------------------------------------------------


def test_usage_line_shows_tokens_cache_and_cost():
    totals = {"prompt_tokens": 1200, "completion_tokens": 300, "cache_hit_tokens": 1000, "cost": 0.000154}
    assert usage_text(totals, "CNY", "en") == "Tokens: in 1200 · out 300 · cache hit 1000 · cost 0.000154 CNY"
    assert usage_text(totals, "CNY", "zh") == "Token：输入 1200 · 输出 300 · 缓存命中 1000 · 费用 0.000154 CNY"
    assert usage_text(None, "USD", "zh") == "Token：暂无"


def test_untitled_conversations_get_a_label():
    assert conversation_choices([{"id": "a", "title": ""}, {"id": "b", "title": "Hi"}], "zh") == [
        ("（无标题）", "a"), ("Hi", "b")
    ]


# --- The Blocks themselves ----------------------------------------------------------------------


# Gradio makes (and drops) event loops of its own when Blocks are built outside one.
@pytest.mark.filterwarnings("ignore:unclosed event loop:ResourceWarning")
def test_build_ui_sets_concurrency_and_never_ships_the_key(lingxi):
    from ui.chat import build_ui

    blocks = build_ui(lingxi)
    assert blocks._queue.default_concurrency_limit == lingxi.settings.ui_concurrency > 1
    config = json.dumps(blocks.get_config_file(), default=str)
    assert lingxi.settings.llm_api_key.get_secret_value() not in config
    chatbot = next(b for b in blocks.blocks.values() if isinstance(b, gr.Chatbot))
    assert chatbot.sanitize_html is True and chatbot.allow_tags is False


# --- The handlers, called directly (no browser) ---------------------------------------------------


async def collect(updates) -> list[tuple]:
    return [u async for u in updates]


def test_provider_error_keeps_the_message_and_retry_answers_it(lingxi, fake_llm):
    from ui.chat import ChatHandlers

    h = ChatHandlers(lingxi, make_i18n())
    prefs = default_prefs(lingxi.settings)
    zh = SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"})
    fake_llm.queue(Reply.error(402, "Insufficient Balance"))
    updates = asyncio.run(collect(h.send("你好", None, prefs, "", zh)))
    box, chat, cid = updates[0][0], updates[-1][1], updates[0][2]
    assert box == "" and cid
    assert chat[0] == {"role": "user", "content": "你好"}
    assert "模型服务商账户余额不足（402）" in chat[-1]["content"] and "重试" in chat[-1]["content"]

    fake_llm.queue(Reply.text("你好！有什么可以帮你？"))
    updates = asyncio.run(collect(h.retry(cid, prefs, "", zh)))
    chat = updates[-1][0]
    assert [m["content"] for m in chat] == ["你好", "你好！有什么可以帮你？"]  # asked once, answered once
    assert "输入" in updates[-1][2]  # the usage line, updated from the usage event
