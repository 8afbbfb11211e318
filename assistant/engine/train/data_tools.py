"""Per-tool conversation builders for ``data.py``: a user request ending in the right
tool call (``BUILDERS``), and the same followed by a realistic, trimmed tool result
and the assistant's confirmation (``follow_up``).

Tools that act on an existing event or reminder name it by its title or text in the
user's words (``event``, ``reminder``), which the tool resolves to the one record
meant (``assistant.lookup``), so the call copies a span of the request instead of
an id from a listing. Events, reminders
and passages in results are built by ``data_shapes``, in the tools' own shapes.

Builders take ``data._Gen`` and reach the pools, times and knowledge base only through
it, so this module does not import ``data`` (which imports it).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from assistant.engine.train import data_shapes as shapes
from tools.registry import ask_user
from tools.schedule import unknown_name
from tools.timeparse import TimeParseError


def _current_time(g):
    if g.rng.random() < 0.35:
        tz = g.v("tz")
        g.ctx["tz"] = tz
        return [g.user("current_time_tz", tz=tz), g.call("current_time", {"timezone": tz})]
    return [g.user("current_time"), g.call("current_time", {})]


def _search_conversations(g):
    q = g.ctx["query"] = g.v("query")
    return [g.user("search_conversations", query=q), g.call("search_conversations", {"query": q})]


def _create_event(g):
    title, start, r = g.v("title"), g.time(), g.shape()
    args = {"title": title, "start": start}
    if r < 0.5:
        msg = g.user("create_event", title=title, start=start)
    elif r < 0.65:
        end = g.rng.choice([t for t in g.one_offs() if t != start])
        args["end"] = end
        msg = g.user("create_event_end", title=title, start=start, end=end)
    elif r < 0.85:
        args["location"] = loc = g.v("loc")
        msg = g.user("create_event_loc", title=title, start=start, loc=loc)
    else:
        args = {"title": title, "start": g.rng.choice(g.split_of(g.m.ALLDAY)), "all_day": True}
        msg = g.user("create_event_allday", title=title, date=args["start"])
    g.ctx["args"] = args
    return [msg, g.call("create_event", args)]


def _list_events(g):
    r, days = g.shape(), g.days()
    if r < 0.4:
        msg, args = g.user("list_events"), {}
    elif r < 0.8:
        start = g.rng.choice(days)
        msg, args = g.user("list_events_start", start=start), {"start": start}
    else:
        start = g.rng.choice(days)
        end = g.rng.choice([d for d in days if d != start])
        msg, args = g.user("list_events_range", start=start, end=end), {"start": start, "end": end}
    g.ctx["args"] = args
    return [msg, g.call("list_events", args)]


def _named_event(g, title):
    """The event the user names: the row a follow-up's result restates. The call names it by its
    title (``event``), which the tool resolves, so no listing and no id to copy come first."""
    g.ctx["event"] = shapes.occurrence(g.uid(), title, g.moment(), g.zone)
    return title


def _update_event(g):
    title, r = g.v("title"), g.rng.random()
    if r < 0.6:
        field, value, msg = "start", g.time(), None
        msg = g.user("update_event_time", title=title, start=value)
    elif r < 0.8:
        field, value = "location", g.v("loc")
        msg = g.user("update_event_loc", title=title, loc=value)
    else:
        field, value = "title", g.v("new")
        msg = g.user("update_event_title", title=title, new=value)
    g.ctx["args"] = args = {"event": _named_event(g, title), field: value}
    return [msg, g.call("update_event", args)]


def _delete_event(g):
    title = g.v("title")
    g.ctx["args"] = args = {"event": _named_event(g, title)}
    return [g.user("delete_event", title=title), g.call("delete_event", args)]


def _create_reminder(g):
    text, r = g.v("text"), g.shape()
    if r < 0.6:
        when = g.time()
        g.ctx["args"] = args = {"text": text, "when": when}
        return [g.user("create_reminder", text=text, when=when), g.call("create_reminder", args)]
    if r < 0.8:
        when = g.time()
        phrase, channels = g.map_pick(g.m.CHANNELS)
        g.ctx["args"] = args = {"text": text, "when": when, "channels": channels}
        return [g.user("create_reminder_channel", text=text, when=when, channel=phrase), g.call("create_reminder", args)]
    title, lead = g.v("title"), g.rng.choice((5, 10, 15, 20, 30, 45, 60))
    g.ctx["args"] = args = {"text": title, "event": _named_event(g, title), "lead_minutes": lead}
    return [g.user("create_reminder_event", title=title, lead=lead), g.call("create_reminder", args)]


def _list_reminders(g):
    if g.shape() < 0.6:
        return [g.user("list_reminders"), g.call("list_reminders", {})]
    phrase, status = g.map_pick(g.m.STATUS)
    return [g.user("list_reminders_status", status=phrase), g.call("list_reminders", {"status": status})]


def _named_reminder(g, text):
    """The reminder the user names by its text (``reminder``), as ``_named_event``."""
    g.ctx["reminder"] = shapes.reminder(g.uid(), text, g.moment(), g.zone)
    return text


def _update_reminder(g):
    text = g.v("text")
    if g.rng.random() < 0.7:
        field, value = "when", g.time()
        msg = g.user("update_reminder_time", text=text, when=value)
    else:
        field, value = "text", g.v("text")
        while value == text:
            value = g.v("text")
        msg = g.user("update_reminder_text", text=text, new=value)
    g.ctx["args"] = args = {"reminder": _named_reminder(g, text), field: value}
    return [msg, g.call("update_reminder", args)]


def _cancel_reminder(g):
    text = g.v("text")
    g.ctx["args"] = args = {"reminder": _named_reminder(g, text)}
    return [g.user("cancel_reminder", text=text), g.call("cancel_reminder", args)]


def _search_knowledge_base(g):
    g.ctx["passages"] = []
    return g.kb(True, free=True)[0][:2]


def _create_ticket(g):
    if g.rng.random() < 0.5:
        contact, summary = g.v("contact"), g.v("summary")
        msgs = [g.user("create_ticket", contact=contact, summary=summary)]
    else:
        msgs, g.ctx["passages"] = g.kb(False)
        contact, summary = g.v("contact"), g.ctx["question"]
        msgs.append({"role": "user", "content": g.pick("contact_reply").format(contact=contact)})
    g.ctx["contact"] = contact
    return [*msgs, g.call("create_ticket", {"contact": contact, "summary": summary})]


BUILDERS = {
    "current_time": _current_time, "search_conversations": _search_conversations,
    "create_event": _create_event, "list_events": _list_events, "update_event": _update_event,
    "delete_event": _delete_event, "create_reminder": _create_reminder, "list_reminders": _list_reminders,
    "update_reminder": _update_reminder, "cancel_reminder": _cancel_reminder,
    "search_knowledge_base": _search_knowledge_base, "create_ticket": _create_ticket,
}


def _ask(g, msgs, exc):
    q = str(exc)
    return [*msgs, g.result(ask_user(q)), {"role": "assistant", "content": q}]


# Tools that take a record by name, and the argument naming it ("event" or "reminder", also its kind).
_NAMED = {"update_event": "event", "delete_event": "event", "create_reminder": "event",
          "update_reminder": "reminder", "cancel_reminder": "reminder"}


def _unknown_name(g, msgs, name: str) -> list[dict] | None:
    """One in ten calls by name finds no such record: the tool's own question, put to the user in
    their language (the tool asks in both)."""
    key = _NAMED.get(name)
    if key not in g.ctx.get("args", {}) or g.rng.random() >= 0.1:
        return None
    q = str(unknown_name(key, g.ctx["args"][key]))
    return [*msgs, g.result(ask_user(q)), {"role": "assistant", "content": q.split(" / ")[g.lang == "zh"]}]


def _agenda(g, rows, args) -> dict:
    """``shapes.agenda`` over the range the call asked for (from now when it cannot be resolved)."""
    try:
        start = g.at(args["start"]) if "start" in args else g.now
        end = g.at(args["end"]) if "end" in args else None
    except TimeParseError:
        start, end = g.now, None
    return shapes.agenda(rows, start, end if end and end > start else None)


def follow_up(g, name: str) -> list[dict]:
    """A ``name`` request, its call, a trimmed result and the reply restating it."""
    if name == "search_knowledge_base":
        name = "create_event"  # answering from passages is the "grounded" kind
    msgs = BUILDERS[name](g)
    unknown = _unknown_name(g, msgs, name)
    if unknown:
        return unknown
    a, sep = g.ctx.get("args", {}), "；" if g.lang == "zh" else "; "
    try:
        if name == "create_event":
            uid, start = g.uid(), g.at(a["start"])
            overlaps = [(g.v("title"), g.uid())] if g.rng.random() < 0.3 else []
            res = shapes.event_result(uid, a["title"], start, g.zone, location=a.get("location", ""),
                                      all_day=a.get("all_day", False), overlaps=overlaps)
            time = res["event"]["starts_at"]
            if overlaps:
                other = overlaps[0][0]
                return [*msgs, g.result(res), g.say("r_event_clash", title=a["title"], time=time, other=other)]
            return [*msgs, g.result(res), g.say("r_event", title=a["title"], time=time)]
        if name == "update_event":
            old = g.ctx["event"]
            start = g.at(a["start"]) if "start" in a else datetime.fromisoformat(old["starts_at"])
            res = shapes.event_result(old["id"], a.get("title", old["title"]), start, g.zone,
                                      location=a.get("location", ""))
            ev = res["event"]
            return [*msgs, g.result(res), g.say("r_update", title=ev["title"], time=ev["starts_at"])]
        if name == "create_reminder":
            rem = shapes.reminder(g.uid(), a["text"], g.at(a["when"]) if "when" in a else g.moment(), g.zone,
                                  channels=a.get("channels", ["inapp"]), event_id=a.get("event_id"),
                                  lead_minutes=a.get("lead_minutes", 0))
            time = rem["due_at"]
            return [*msgs, g.result({"ok": True, "reminder": rem}), g.say("r_reminder", text=a["text"], time=time)]
        if name == "update_reminder":
            old = g.ctx["reminder"]
            due = g.at(a["when"]) if "when" in a else datetime.fromisoformat(old["due_at"])
            rem = shapes.reminder(old["id"], a.get("text", old["text"]), due, g.zone)
            return [*msgs, g.result({"ok": True, "reminder": rem}), g.say("r_reminder_update", text=rem["text"], time=rem["due_at"])]
    except TimeParseError as exc:
        return _ask(g, msgs, exc)
    if name == "delete_event":
        res = {"ok": True, "deleted": g.ctx["event"]["id"], "title": g.ctx["event"]["title"],
               "reminders_cancelled": g.rng.randint(0, 1)}
        return [*msgs, g.result(res), g.say("r_delete", title=g.ctx["event"]["title"])]
    if name == "cancel_reminder":
        old = g.ctx["reminder"]
        rem = shapes.reminder(old["id"], old["text"], datetime.fromisoformat(old["due_at"]), g.zone,
                              status="cancelled")
        return [*msgs, g.result({"ok": True, "reminder": rem}), g.say("r_cancel", text=rem["text"])]
    if name in ("list_events", "list_reminders"):
        key, field, stamp = ("events", "title", "starts_at") if name == "list_events" else ("reminders", "text", "due_at")
        row = shapes.occurrence if name == "list_events" else shapes.reminder
        items = [row(g.uid(), t, g.moment(), g.zone) for t in dict.fromkeys(g.v(field) for _ in range(g.rng.randint(0, 3)))]
        result = _agenda(g, items, a) if name == "list_events" else {"ok": True, key: items}
        if not items:
            return [*msgs, g.result(result), g.say(f"r_no_{key}")]
        text = sep.join(f"{x[field]} {x[stamp]}" for x in items)
        return [*msgs, g.result(result), g.say(f"r_list_{key}", items=text)]
    if name == "current_time":
        now = g.now.astimezone(ZoneInfo(g.ctx.get("tz", g.zone)))
        res = {"timezone": g.ctx.get("tz", g.zone), "iso": now.isoformat(timespec="seconds"), "weekday": now.strftime("%A")}
        return [*msgs, g.result(res), g.say("r_time", iso=res["iso"], weekday=res["weekday"])]
    if name == "search_conversations":
        if g.rng.random() < 0.2:
            return [*msgs, g.result([]), g.say("r_history_none")]
        q = g.ctx["query"]
        hit = {"conversation_id": g.uid(), "title": q, "updated_at": g.stamp(), "snippet": q}
        return [*msgs, g.result([hit]), g.say("r_history", title=q, snippet=q)]
    ticket = g.rng.randint(1, 500)  # create_ticket
    res = {"ok": True, "ticket_id": ticket, "message": "A colleague will contact the customer."}
    return [*msgs, g.result(res), g.say("r_ticket", ticket_id=ticket, contact=g.ctx["contact"])]
