"""The built-in tools, run through the registry as the agent runs them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from assistant import conversations as convs
from tools.registry import ToolContext


def context(lingxi, profile="owner", conversation_id=None) -> ToolContext:
    return ToolContext(settings=lingxi.settings, db=lingxi.db, profile=profile, conversation_id=conversation_id)


def run(lingxi, name, args, **ctx):
    return lingxi.registry.execute(name, json.dumps(args, ensure_ascii=False), context=context(lingxi, **ctx))


# --------------------------------------------------------------------------- current_time


def check_now(payload, zone_name, offset):
    assert payload["timezone"] == zone_name
    when = datetime.fromisoformat(payload["iso"])
    assert when.utcoffset() == offset
    assert abs(when - datetime.now(timezone.utc)) < timedelta(seconds=10)
    assert payload["weekday"] == when.strftime("%A")
    assert when.microsecond == 0  # seconds precision


def test_current_time_in_owner_zone(lingxi):
    result = run(lingxi, "current_time", {})
    assert result.ok is True
    payload = json.loads(result.content)
    assert payload["iso"].endswith("+08:00")
    check_now(payload, "Asia/Shanghai", timedelta(hours=8))


def test_current_time_in_named_zone(lingxi):
    payload = json.loads(run(lingxi, "current_time", {"timezone": "Asia/Kolkata"}).content)
    assert payload["iso"].endswith("+05:30")
    check_now(payload, "Asia/Kolkata", timedelta(hours=5, minutes=30))
    payload = json.loads(run(lingxi, "current_time", {"timezone": "America/New_York"}).content)
    expected = datetime.now(ZoneInfo("America/New_York")).utcoffset()
    check_now(payload, "America/New_York", expected)


def test_current_time_explicit_null_zone_means_owner(lingxi):
    payload = json.loads(run(lingxi, "current_time", {"timezone": None}).content)
    assert payload["timezone"] == "Asia/Shanghai"


def test_current_time_available_to_customers(lingxi):
    result = run(lingxi, "current_time", {}, profile="customer_service")
    assert result.ok is True
    assert json.loads(result.content)["timezone"] == "Asia/Shanghai"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "Not A Zone"])
def test_current_time_unknown_zone(lingxi, zone):
    result = run(lingxi, "current_time", {"timezone": zone})
    assert result.ok is False
    message = json.loads(result.content)["error"]
    assert message.startswith("ValueError: unknown time zone")
    assert repr(zone) in message


# --------------------------------------------------------------------------- search_conversations


def make_conversation(lingxi, *turns, profile="owner", minutes=0):
    with lingxi.db.session() as s:
        conv = convs.create(session=s, profile=profile)
        for role, content in turns:
            convs.add_message(conv.id, session=s, role=role, content=content)
        conv.updated_at = datetime(2025, 5, 1, 8, 0, tzinfo=timezone.utc) + timedelta(minutes=minutes)
        return conv.id


@pytest.fixture
def history(lingxi):
    ids = {
        "beijing": make_conversation(
            lingxi, ("user", "下个月我想去北京旅游"), ("assistant", "可以去故宫和长城看看。"), minutes=1
        ),
        "kyoto": make_conversation(
            lingxi, ("user", "Plan a weekend in Kyoto"), ("assistant", "Visit Fushimi Inari early."), minutes=2
        ),
        "taxes": make_conversation(lingxi, ("user", "How do I file taxes?"), minutes=3),
        "customer": make_conversation(
            lingxi, ("user", "我想去故宫，Kyoto 也行"), profile="customer_service", minutes=4
        ),
    }
    return ids


def search(lingxi, query, limit=None, **ctx):
    args = {"query": query} if limit is None else {"query": query, "limit": limit}
    result = run(lingxi, "search_conversations", args, **ctx)
    assert result.ok is True, result.content
    return json.loads(result.content)


def test_search_by_chinese_message_text(lingxi, history):
    found = search(lingxi, "故宫")
    assert [r["conversation_id"] for r in found] == [history["beijing"]]
    assert found[0]["title"] == "下个月我想去北京旅游"
    assert found[0]["snippet"] == "可以去故宫和长城看看。"
    assert datetime.fromisoformat(found[0]["updated_at"]).replace(tzinfo=None) == datetime(2025, 5, 1, 8, 1)


def test_search_by_english_text_case_insensitive(lingxi, history):
    found = search(lingxi, "fushimi")
    assert [r["conversation_id"] for r in found] == [history["kyoto"]]
    assert found[0]["snippet"] == "Visit Fushimi Inari early."
    assert [r["conversation_id"] for r in search(lingxi, "KYOTO")] == [history["kyoto"]]


def test_search_no_match(lingxi, history):
    assert search(lingxi, "量子力学") == []


def test_search_excludes_current_conversation(lingxi, history):
    current = make_conversation(lingxi, ("user", "Kyoto again, remind me"), minutes=10)
    found = search(lingxi, "kyoto", conversation_id=current)
    assert [r["conversation_id"] for r in found] == [history["kyoto"]]
    found = search(lingxi, "kyoto")
    assert [r["conversation_id"] for r in found] == [current, history["kyoto"]]


def test_search_respects_limit(lingxi):
    ids = [make_conversation(lingxi, ("user", f"会议记录 第{i}次"), minutes=i) for i in range(6)]
    found = search(lingxi, "会议记录", limit=2)
    assert [r["conversation_id"] for r in found] == [ids[5], ids[4]]
    # With the current conversation among the newest, the limit is still filled.
    found = search(lingxi, "会议记录", limit=3, conversation_id=ids[5])
    assert [r["conversation_id"] for r in found] == [ids[4], ids[3], ids[2]]
    assert len(search(lingxi, "会议记录")) == 5  # default limit
    assert len(search(lingxi, "会议记录", limit=0)) == 1  # clamped to at least one


def test_search_limit_capped_at_20(lingxi):
    for i in range(22):
        make_conversation(lingxi, ("user", f"note {i}"), minutes=i)
    assert len(search(lingxi, "note", limit=100)) == 20


def test_search_never_returns_other_profiles(lingxi, history):
    owner_ids = {r["conversation_id"] for r in search(lingxi, "故宫")} | {
        r["conversation_id"] for r in search(lingxi, "kyoto")
    }
    assert history["customer"] not in owner_ids
    assert owner_ids == {history["beijing"], history["kyoto"]}


def test_search_from_customer_profile_sees_only_its_own(lingxi, history):
    from tools.history import search_conversations

    found = search_conversations(context(lingxi, profile="customer_service"), "故宫")
    assert [r["conversation_id"] for r in found] == [history["customer"]]
    # And through the registry a customer may not search at all.
    result = run(lingxi, "search_conversations", {"query": "故宫"}, profile="customer_service")
    assert result.ok is False
    assert "not available to the customer_service profile" in result.content
