"""Owner tools for the calendar: create, list, update and delete events.

Times are ISO-8601 or natural language in Chinese or English ("明天下午三点",
"next Friday 10am"), resolved in the owner's zone relative to now by
``tools.timeparse``. An ambiguous or past time, or a name that matches no
event or several, is not guessed: the tool raises ``NeedsUser``, which the
registry turns into a question for the model to put to the user.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from assistant import events
from assistant.reminders import ScheduleError
from tools.registry import NeedsUser, ToolContext
from tools.timeparse import Resolved, TimeParseError, resolve


def resolve_time(text: str, context: ToolContext, *, allow_past: bool = False) -> Resolved:
    try:
        return resolve(text, now=context.now(), tz=context.settings.timezone)
    except TimeParseError as exc:
        if allow_past and exc.code == "past":
            raise  # callers that list past ranges handle this themselves
        raise NeedsUser(str(exc)) from None


def event_result(event, clashes) -> dict:
    """create_event's and update_event's answer: the event, and a warning with the events it overlaps."""
    result = {"ok": True, "event": events.as_dict(event)}
    if clashes:
        result["warning"] = "overlaps other events; tell the user"
        result["overlaps"] = [{"title": e.title, "id": e.id, "starts_at": s.isoformat()} for e, s in clashes]
    return result


def pick(kind: str, name: str | None, found: list, label, when) -> str:
    """The id of the one record in ``found`` (``events.named``/``reminders.named`` of the user's ``name``
    for a ``kind``, "event" or "reminder"); NeedsUser when there is none or several."""
    zh = _ZH[kind]
    if not (name or "").strip():
        raise NeedsUser(f"Which {kind}? / 哪个{zh}？")
    if len(found) == 1:
        return found[0].id
    if not found:
        raise unknown_name(kind, name)
    key = "title" if kind == "event" else "text"
    labelled = [(label(r), when(r), r.id) for r in found]
    rows = [{key: text, "id": rid, "at": at.isoformat()} for text, at, rid in labelled]
    en = "; ".join(f"{text} {_spoken_en(at)}" for text, at, _ in labelled)
    zh_listed = "；".join(f"{text} {_spoken_zh(at)}" for text, at, _ in labelled)
    raise NeedsUser(f"Several {kind}s are called “{name}” ({en}). Which one? / "
                    f"有{len(rows)}个“{name}”{zh}（{zh_listed}），是哪一个？", rows)


_ZH = {"event": "日程", "reminder": "提醒"}


# The question lists times as a person says them (the model relays it verbatim); the candidates keep ISO.
def _spoken_en(at: datetime) -> str:  # not %a/%b, which follow the process locale
    day = "Mon Tue Wed Thu Fri Sat Sun".split()[at.weekday()]
    month = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()[at.month - 1]
    return f"{day} {month} {at.day}, {at:%H:%M}"


def _spoken_zh(at: datetime) -> str:
    return f"{at.month}月{at.day}日（周{'一二三四五六日'[at.weekday()]}）{at:%H:%M}"


def unknown_name(kind: str, name: str) -> NeedsUser:
    """The question when no ``kind`` ("event" or "reminder") is called ``name``, in English and Chinese."""
    return NeedsUser(f"I can't find {'an' if kind == 'event' else 'a'} {kind} called “{name}”. Which one do you mean? / "
                     f"没有找到“{name}”这个{_ZH[kind]}，您指的是哪一个？")


def event_id_for(context: ToolContext, session, event_id: str | None, event: str | None) -> str:
    """``event_id`` as given, else the id of the one event titled ``event``."""
    if event_id:
        return event_id
    found = events.named(event or "", session=session, now=context.now())
    return pick("event", event, found, lambda e: e.title, lambda e: e.starts_at.astimezone(ZoneInfo(e.timezone)))


def create_event(
    context: ToolContext,
    title: str,
    start: str,
    end: str | None = None,
    all_day: bool = False,
    location: str = "",
    notes: str = "",
) -> dict:
    """Add an event to the owner's calendar; warns when it overlaps other events.

    Args:
        title: what the event is, e.g. "和王总开会".
        start: when it starts: ISO-8601 or natural language ("明天下午三点", "every Monday 9am" for a repeating event).
        end: when it ends, same formats; omit for one hour (or the whole day when all_day).
        all_day: true for a whole-day event such as a birthday.
        location: where, if known.
        notes: anything else worth keeping.
    """
    when = resolve_time(start, context)
    ends = resolve_time(end, context).when if end else None
    with context.db.session() as session:
        event, clashes = events.create(
            session=session, title=title, starts_at=when.when, ends_at=ends, all_day=all_day or when.all_day,
            location=location, notes=notes, rrule=when.rrule, tz=context.settings.timezone,
        )
        return event_result(event, clashes)


def list_events(context: ToolContext, start: str | None = None, end: str | None = None) -> dict:
    """List calendar events (repeating ones expanded) between two times; default: now to 7 days ahead.

    Args:
        start: beginning of the range (ISO-8601 or natural language, e.g. "今天", "this Monday"); default now.
        end: end of the range; default 7 days after start.
    """
    now = context.now()
    begin = _range_point(start, context) if start else now
    finish = _range_point(end, context) if end else begin + timedelta(days=7)
    if finish <= begin:
        finish = begin + timedelta(days=1)  # "今天" to "今天": the whole day
    with context.db.session() as session:
        return {"ok": True, "from": begin.isoformat(), "to": finish.isoformat(),
                "events": events.agenda(session=session, start=begin, end=finish)}


def _range_point(text: str, context: ToolContext) -> datetime:
    try:
        return resolve_time(text, context, allow_past=True).when
    except TimeParseError as exc:
        # A range may start in the past ("this Monday"): take the day's start.
        if exc.code == "past" and exc.when is not None:
            return exc.when
        raise NeedsUser(str(exc)) from None


def update_event(
    context: ToolContext,
    event_id: str | None = None,
    title: str | None = None,
    start: str | None = None,
    end: str | None = None,
    location: str | None = None,
    notes: str | None = None,
    event: str | None = None,
) -> dict:
    """Change an event; only the fields given change. Its reminders move with it.

    Args:
        event_id: the id from create_event or list_events.
        title: new title.
        start: new start time (ISO-8601 or natural language).
        end: new end time.
        location: new location.
        notes: new notes.
        event: instead of event_id, the event's current title as the user names it, e.g. "和王总开会".
    """
    changes: dict = {k: v for k, v in {"title": title, "location": location, "notes": notes}.items() if v is not None}
    if start:
        when = resolve_time(start, context)
        changes["starts_at"], changes["rrule"] = when.when, when.rrule
    if end:
        changes["ends_at"] = resolve_time(end, context).when
    with context.db.session() as session:
        event_id = event_id_for(context, session, event_id, event)
        found, clashes = events.change(event_id, session=session, now=context.now(), **changes)
        return event_result(found, clashes)


def delete_event(context: ToolContext, event_id: str | None = None, event: str | None = None) -> dict:
    """Delete an event from the calendar; its pending reminders are cancelled.

    Args:
        event_id: the id from create_event or list_events.
        event: instead of event_id, the event's title as the user names it, e.g. "理发".
    """
    with context.db.session() as session:
        try:
            event_id = event_id_for(context, session, event_id, event)
            title = events.get(event_id, session=session).title
            cancelled = events.delete(event_id, session=session)
        except ScheduleError as exc:
            return {"ok": False, "error": str(exc)}
    return {"ok": True, "deleted": event_id, "title": title, "reminders_cancelled": cancelled}
