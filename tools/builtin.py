"""The built-in tools, registered in one place.

``default_registry()`` registers every built-in tool; which profile may call
which is decided by the allow-lists in ``tools.registry``.
"""

from tools import clock, history, knowledge, reminders, schedule, tickets
from tools.registry import Registry

BUILTIN = (
    clock.current_time,
    history.search_conversations,
    schedule.create_event,
    schedule.list_events,
    schedule.update_event,
    schedule.delete_event,
    reminders.create_reminder,
    reminders.list_reminders,
    reminders.update_reminder,
    reminders.cancel_reminder,
    knowledge.search_knowledge_base,
    tickets.create_ticket,
)


def default_registry() -> Registry:
    registry = Registry()
    for fn in BUILTIN:
        registry.register(fn)
    return registry
