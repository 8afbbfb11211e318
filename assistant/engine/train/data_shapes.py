"""Tool results in the shapes the app's tools give them, for the synthetic conversations.

Does: build an event, a listed occurrence, a reminder or a knowledge-base passage as the tools
report it: the app's own ``as_dict`` of a transient ORM row (never stored), then the registry's
``compact``, as ``ToolRegistry.execute`` serialises every result. A listing the model is trained on
then has the keys, order and formats of the one it is served (the name before the id, ``all_day``,
the zone, the occurrence's times), not a three-key sketch of it.

Does not: store anything, pick what a conversation says (``data_tools`` and ``data`` do), or
cover the rarely listed fields (a webhook URL, a delivery error): a fresh row has none.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from assistant import events, reminders
from assistant.models import Event, Reminder
from tools.knowledge import ANSWER_FROM_PASSAGES
from tools.registry import compact
from tools import schedule


def _event(uid: str, title: str, starts_at: datetime, zone: str, location: str, all_day: bool) -> Event:
    return Event(id=uid, title=title, starts_at=starts_at, ends_at=None, all_day=all_day, location=location, notes="",
                 rrule=None, timezone=zone)


def event_result(uid: str, title: str, starts_at: datetime, zone: str, *, location: str = "", all_day: bool = False,
                 overlaps: list[tuple[str, str]] = ()) -> dict:
    """create_event's / update_event's result (``tools.schedule.event_result``) for an event in the IANA
    ``zone``, warning of the ``(title, id)`` events that start at the same time."""
    clashes = [(_event(other_id, other, starts_at, zone, "", False), starts_at) for other, other_id in overlaps]
    return compact(schedule.event_result(_event(uid, title, starts_at, zone, location, all_day), clashes))


def occurrence(uid: str, title: str, starts_at: datetime, zone: str) -> dict:
    """An event as list_events lists it (``events.occurrence``)."""
    row = _event(uid, title, starts_at, zone, "", False)
    start = starts_at.astimezone(ZoneInfo(zone))
    return compact(events.occurrence(row, start, start + events.length(row)))


def agenda(rows: list[dict], start: datetime, end: datetime | None = None) -> dict:
    """A list_events result: the range (a week from ``start`` unless ``end``) and its occurrences."""
    return {"ok": True, "from": start.isoformat(), "to": (end or start + timedelta(days=7)).isoformat(), "events": rows}


def reminder(uid: str, text: str, due_at: datetime, zone: str, *, status: str = "scheduled", channels=("inapp",),
             event_id: str | None = None, lead_minutes: int = 0) -> dict:
    """A reminder as create/list/update/cancel_reminder report it (``reminders.as_dict``)."""
    row = Reminder(id=uid, text=text, due_at=due_at, timezone=zone, rrule=None, event_id=event_id,
                   lead_minutes=lead_minutes, channels=list(channels), webhook_url=None, email_to=None, status=status,
                   last_error=None, last_fired_at=None, fire_count=0)
    return compact(reminders.as_dict(row))


def passages(found: list[tuple[str, str]], scores: list[float]) -> dict:
    """A search_knowledge_base result for ``(text, document name)`` pairs in rank order, as
    ``tools.knowledge`` writes it for an ingested Markdown file: its name is the doc id and the
    source's stem, its one heading the title and the section; no page."""
    items = [compact({"ref": i, "doc_id": name, "source": f"{name}.md", "title": name, "section": name, "page": None,
                      "score": round(score, 4), "text": text})
             for i, ((text, name), score) in enumerate(zip(found, scores), start=1)]
    return {"passages": items, "instruction": ANSWER_FROM_PASSAGES}
