"""toolview: the compact view of tool results that the bundled model is trained and served on."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tokenizers import Tokenizer, models

from assistant import events
from assistant.engine.tokenizer import ChatTokenizer
from assistant.engine.toolview import view
from assistant.engine.train import data_shapes as shapes
from assistant.models import Event
from tools.registry import ToolContext

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)


def run_tool(app, name: str, args: dict) -> str:
    context = ToolContext(settings=app.settings, db=app.db, profile="owner", kb=None, clock=lambda: NOW)
    result = app.registry.execute(name, json.dumps(args, ensure_ascii=False), context=context)
    return result.content


def test_a_listing_keeps_names_ids_and_times_and_drops_the_rest(lingxi):
    made = json.loads(run_tool(lingxi, "create_event", {"title": "和王总开会", "start": "明天下午三点"}))
    full = run_tool(lingxi, "list_events", {})
    row = json.loads(view(full))["events"][0]
    assert json.loads(view(full)) == {"events": [row]}  # no "ok", no range
    assert row == {"title": "和王总开会", "id": made["event"]["id"], "starts_at": "2026-11-23T15:00:00+08:00",
                   "occurrence_end": "2026-11-23T16:00:00+08:00"}
    assert len(view(full)) < len(full) * 0.6


def test_a_repeating_events_occurrence_keeps_its_own_start():
    row = Event(id="e1", title="周会", starts_at=NOW, ends_at=None, all_day=False, location="", notes="",
                rrule="FREQ=WEEKLY", timezone="Asia/Shanghai")
    later = NOW + timedelta(days=7)
    listed = json.loads(view(json.dumps(events.occurrence(row, later, later + timedelta(hours=1)), default=str)))
    assert listed["occurrence_start"] != listed["starts_at"]
    assert listed["occurrence_start"].startswith("2026-11-29")


def test_reminders_keep_what_is_not_the_plain_default(lingxi):
    plain = json.loads(run_tool(lingxi, "create_reminder", {"text": "给王总回电话", "when": "明天下午三点"}))
    assert json.loads(view(json.dumps(plain, ensure_ascii=False))) == {
        "reminder": {"text": "给王总回电话", "id": plain["reminder"]["id"], "due_at": "2026-11-23T15:00:00+08:00"}}
    event = json.loads(run_tool(lingxi, "create_event", {"title": "交房租", "start": "明天早上9点"}))["event"]
    before = run_tool(lingxi, "create_reminder", {"text": "交房租", "event_id": event["id"], "lead_minutes": 30})
    assert json.loads(before).get("ok"), before
    kept = json.loads(view(before))["reminder"]
    assert kept["lead_minutes"] == 30 and kept["event_id"] == event["id"]
    hooked = shapes.reminder("r2", "x", NOW, "Asia/Shanghai", channels=("inapp", "webhook"))
    assert json.loads(view(json.dumps(hooked)))["channels"] == ["inapp", "webhook"]
    cancelled = run_tool(lingxi, "cancel_reminder", {"reminder_id": plain["reminder"]["id"]})
    assert json.loads(view(cancelled))["reminder"]["status"] == "cancelled"


def test_passages_keep_ref_title_and_text():
    found = shapes.passages([("Unopened items can be returned.", "returns")], [0.61])
    found["passages"][0]["section"] = "Refunds"
    assert json.loads(view(json.dumps(found))) == {"passages": [
        {"ref": 1, "title": "returns", "section": "Refunds", "text": "Unopened items can be returned."}]}
    same = shapes.passages([("Unopened items can be returned.", "returns")], [0.61])
    assert "section" not in json.loads(view(json.dumps(same)))["passages"][0]


@pytest.mark.parametrize("content", [
    '{"ok": false, "error": "no such reminder: abc"}',
    '{"ok": false, "ask_user": "Which day?"}',
    '"a JSON string"',
    "[]",
])
def test_failures_and_scalars_keep_their_json(content):
    assert json.loads(view(content)) == json.loads(content)


@pytest.mark.parametrize("content", ["plain text from some tool", "{not json", "", "42"])
def test_text_that_is_not_a_json_object_or_list_is_kept_as_it_is(content):
    assert view(content) == content


def chat(view_name: str | None) -> ChatTokenizer:
    config = {"chat_template": "{% for m in messages %}{{ m['role'] }}:{{ m['content'] }}\n{% endfor %}"}
    if view_name:
        config["tool_result_view"] = view_name
    return ChatTokenizer(Tokenizer(models.BPE()), config, config["chat_template"])


def test_the_chat_tokenizer_renders_the_view_a_checkpoint_asks_for():
    result = {"ok": True, "reminder": {"text": "x", "id": "r1", "timezone": "Asia/Shanghai", "fire_count": 0}}
    msgs = [{"role": "user", "content": '{"ok": true}'},
            {"role": "tool", "tool_call_id": "c1", "content": json.dumps(result)}]
    assert chat("compact").apply_chat_template(msgs) == \
        'user:{"ok": true}\ntool:{"reminder": {"text": "x", "id": "r1"}}\n'
    assert chat(None).apply_chat_template(msgs) == chat("full").apply_chat_template(msgs) == \
        f'user:{{"ok": true}}\ntool:{json.dumps(result)}\n'
    with pytest.raises(ValueError, match="tool_result_view"):
        chat("short")
