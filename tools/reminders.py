"""Owner tools for reminders: create, list, update and cancel.

A reminder fires at a time ("明天下午三点", ISO-8601), on a recurrence
("every weekday at 8:30", "每月1号早上9点"), or a lead time before an event.
It goes to the in-app inbox unless other channels (webhook, email) are
named. Times go through the same resolver as events, and an ambiguous or past
time comes back as a question for the user.
"""

from __future__ import annotations

from typing import Literal

from assistant import reminders
from tools.registry import NeedsUser, ToolContext
from tools.schedule import event_id_for, pick, resolve_time

Channel = Literal["inapp", "webhook", "email"]


def create_reminder(
    context: ToolContext,
    text: str,
    when: str | None = None,
    event_id: str | None = None,
    lead_minutes: int = 0,
    channels: list[Channel] | None = None,
    event: str | None = None,
) -> dict:
    """Set a reminder for the owner, one-off or repeating, or tied to a calendar event.

    Args:
        text: what to remind about, in the user's words, e.g. "给王总回电话".
        when: ISO-8601 or natural language: "明天下午三点", "in 2 hours", "every weekday at 8:30", "每周一早上9点". Omit when event_id or event is given.
        event_id: remind before this event (from create_event or list_events) instead of at a time.
        lead_minutes: with event_id or event, how many minutes before the event start.
        channels: where to deliver: "inapp" (default), "webhook", "email".
        event: instead of event_id, the event's title as the user names it, e.g. "和王总开会".
    """
    due, rule = None, None
    if not (event_id or event):
        if not when:
            raise NeedsUser("When should I remind you? / 什么时候提醒您？")
        resolved = resolve_time(when, context)
        due, rule = resolved.when, resolved.rrule
    with context.db.session() as session:
        event_id = event_id_for(context, session, event_id, event) if (event_id or event) else None
        reminder = reminders.create(
            session=session, settings=context.settings, text=text, due_at=due, rrule=rule,
            event_id=event_id, lead_minutes=lead_minutes, channels=list(channels or ["inapp"]), now=context.now(),
        )
        return {"ok": True, "reminder": reminders.as_dict(reminder)}


def list_reminders(
    context: ToolContext, status: Literal["scheduled", "sent", "late", "failed", "cancelled"] | None = None
) -> dict:
    """List the owner's reminders, soonest first, optionally only those with one status.

    Args:
        status: only reminders in this state; omit for all.
    """
    with context.db.session() as session:
        return {"ok": True, "reminders": [reminders.as_dict(r) for r in reminders.list_all(session=session, status=status)]}


def reminder_id_for(session, reminder_id: str | None, reminder: str | None) -> str:
    """``reminder_id`` as given, else the id of the one reminder whose text is ``reminder``."""
    if reminder_id:
        return reminder_id
    found = reminders.named(reminder or "", session=session)
    return pick("reminder", reminder, found, lambda r: r.text, lambda r: r.due_at.astimezone(reminders.zone(r.timezone)))


def update_reminder(
    context: ToolContext,
    reminder_id: str | None = None,
    text: str | None = None,
    when: str | None = None,
    channels: list[Channel] | None = None,
    reminder: str | None = None,
) -> dict:
    """Change a reminder's text, time (or recurrence) or channels; only the fields given change.

    Args:
        reminder_id: the id from create_reminder or list_reminders.
        text: new text.
        when: new time or recurrence, ISO-8601 or natural language.
        channels: new delivery channels.
        reminder: instead of reminder_id, the reminder's current text as the user names it, e.g. "给王总回电话".
    """
    changes: dict = {}
    if text is not None:
        changes["text"] = text
    if channels is not None:
        changes["channels"] = list(channels)
    if when:
        resolved = resolve_time(when, context)
        changes["due_at"], changes["rrule"] = resolved.when, resolved.rrule
    with context.db.session() as session:
        reminder_id = reminder_id_for(session, reminder_id, reminder)
        changed = reminders.change(reminder_id, session=session, settings=context.settings, now=context.now(), **changes)
        return {"ok": True, "reminder": reminders.as_dict(changed)}


def cancel_reminder(context: ToolContext, reminder_id: str | None = None, reminder: str | None = None) -> dict:
    """Cancel a reminder so it never fires again.

    Args:
        reminder_id: the id from create_reminder or list_reminders.
        reminder: instead of reminder_id, the reminder's text as the user names it, e.g. "给王总回电话".
    """
    with context.db.session() as session:
        reminder_id = reminder_id_for(session, reminder_id, reminder)
        return {"ok": True, "reminder": reminders.as_dict(reminders.cancel(reminder_id, session=session))}
