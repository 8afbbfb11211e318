"""The training conversations' tool results have the shapes the app's tools give: same keys, same order."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from assistant.engine.train import data_shapes as shapes
from tools.knowledge import ANSWER_FROM_PASSAGES
from tools.registry import ToolContext

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)


def call(app, name, args, profile="owner", kb=None) -> dict:
    context = ToolContext(settings=app.settings, db=app.db, profile=profile, kb=kb, clock=lambda: NOW)
    result = app.registry.execute(name, json.dumps(args, ensure_ascii=False), context=context)
    assert result.ok, result.content
    return json.loads(result.content)


def test_events_and_listings_match_the_schedule_tools(lingxi):
    created = call(lingxi, "create_event", {"title": "和王总开会", "start": "明天下午三点"})
    clash = call(lingxi, "create_event", {"title": "复盘", "start": "明天下午三点", "location": "三楼"})
    listed = call(lingxi, "list_events", {})
    made = shapes.event_result("9f2c41ab", "和王总开会", NOW, "Asia/Shanghai")
    assert list(created) == list(made) == ["ok", "event"] and list(created["event"]) == list(made["event"])
    made = shapes.event_result("c0ffee12", "复盘", NOW, "Asia/Shanghai", location="三楼", overlaps=[("和王总开会", "9f2c41ab")])
    assert list(clash) == list(made) and list(clash["event"]) == list(made["event"])
    assert list(clash["overlaps"][0]) == list(made["overlaps"][0]) and made["warning"] == clash["warning"]
    row = shapes.occurrence("9f2c41ab", "和王总开会", NOW, "Asia/Shanghai")
    assert list(listed) == list(shapes.agenda([row], NOW)) and list(listed["events"][0]) == list(row)
    assert listed["events"][0]["occurrence_start"] == "2026-11-23T15:00:00+08:00"
    assert row["occurrence_end"] == "2026-11-22T11:00:00+08:00"  # an hour, as the app assumes without an end


def test_reminders_match_the_reminder_tools(lingxi):
    created = call(lingxi, "create_reminder", {"text": "给王总回电话", "when": "明天下午三点"})["reminder"]
    listed = call(lingxi, "list_reminders", {})["reminders"][0]
    cancelled = call(lingxi, "cancel_reminder", {"reminder_id": created["id"]})["reminder"]
    made = shapes.reminder("9f2c41ab", "给王总回电话", NOW, "Asia/Shanghai")
    assert list(created) == list(listed) == list(made)
    assert list(cancelled) == list(shapes.reminder("9f2c41ab", "x", NOW, "Asia/Shanghai", status="cancelled"))
    assert made["due_at"] == "2026-11-22T10:00:00+08:00" and made["channels"] == ["inapp"]


def test_passages_match_the_knowledge_tool(shop):
    found = call(shop, "search_knowledge_base", {"query": "can unopened items be returned for a refund"},
                 profile="customer_service", kb=shop.kb)
    made = shapes.passages([("Unopened items can be returned.", "returns")], [0.61234])
    assert list(found) == list(made) == ["passages", "instruction"] and made["instruction"] == ANSWER_FROM_PASSAGES
    assert list(found["passages"][0]) == list(made["passages"][0]), (found["passages"][0], made["passages"][0])
    assert made["passages"][0]["score"] == 0.6123
