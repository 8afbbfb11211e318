"""Owner tools for the calendar: create, list, update and delete events.

Times are ISO-8601 or natural language in Chinese or English ("明天下午三点",
"next Friday 10am"), resolved in the owner's zone relative to now by
``tools.timeparse``. An ambiguous or past time is not guessed: the tool
answers with a question for the model to put to the user.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from assistant import events
from assistant.reminders import ScheduleError
from tools.registry import ToolContext
from tools.timeparse import Resolved, TimeParseError, resolve


class NeedsUser(Exception):
    """The tool can't proceed without the user's answer; str() is the question."""


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


def ask_user(question: str) -> dict:
    return {"ok": False, "ask_user": question, "instruction": "Ask the user this question; do not guess."}


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
    try:
        when = resolve_time(start, context)
        ends = resolve_time(end, context).when if end else None
    except NeedsUser as exc:
        return ask_user(str(exc))
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
    try:
        begin = _range_point(start, context) if start else now
        finish = _range_point(end, context) if end else begin + timedelta(days=7)
    except NeedsUser as exc:
        return ask_user(str(exc))
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
    event_id: str,
    title: str | None = None,
    start: str | None = None,
    end: str | None = None,
    location: str | None = None,
    notes: str | None = None,
) -> dict:
    """Change an event; only the fields given change. Its reminders move with it.

    Args:
        event_id: the id from create_event or list_events.
        title: new title.
        start: new start time (ISO-8601 or natural language).
        end: new end time.
        location: new location.
        notes: new notes.
    """
    changes: dict = {k: v for k, v in {"title": title, "location": location, "notes": notes}.items() if v is not None}
    try:
        if start:
            when = resolve_time(start, context)
            changes["starts_at"], changes["rrule"] = when.when, when.rrule
        if end:
            changes["ends_at"] = resolve_time(end, context).when
    except NeedsUser as exc:
        return ask_user(str(exc))
    with context.db.session() as session:
        event, clashes = events.change(event_id, session=session, now=context.now(), **changes)
        return event_result(event, clashes)


def delete_event(context: ToolContext, event_id: str) -> dict:
    """Delete an event from the calendar; its pending reminders are cancelled.

    Args:
        event_id: the id from create_event or list_events.
    """
    with context.db.session() as session:
        try:
            cancelled = events.delete(event_id, session=session)
        except ScheduleError as exc:
            return {"ok": False, "error": str(exc)}
    return {"ok": True, "deleted": event_id, "reminders_cancelled": cancelled}
