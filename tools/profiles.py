"""Which tools each agent profile may use: the owner all of them, a customer a few.

A module of its own, with no imports beyond the standard library, because the bundled model's
chat template reads it too (``assistant.engine.train.tokenizer``), on machines that have torch
and tokenizers but not the app's packages.

Does not: define or run the tools (``tools.registry``, ``tools.builtin``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

PROFILES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        # The owner may use every tool; new owner tools are added here by name.
        "owner": frozenset(
            {
                "current_time",
                "search_conversations",
                "create_event",
                "list_events",
                "update_event",
                "delete_event",
                "create_reminder",
                "list_reminders",
                "update_reminder",
                "cancel_reminder",
                "search_knowledge_base",
                "create_ticket",
            }
        ),
        # Customers on the widget: knowledge base and tickets only (added by later features).
        "customer_service": frozenset({"current_time", "search_knowledge_base", "create_ticket"}),
    }
)
