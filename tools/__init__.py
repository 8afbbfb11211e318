"""Lingxi's tools: plain typed functions the agent can call.

``default_registry()`` registers every built-in tool; which profile may call
which is decided by the allow-lists in ``tools.registry``.
"""

from tools import clock, history
from tools.registry import Registry


def default_registry() -> Registry:
    registry = Registry()
    registry.register(clock.current_time)
    registry.register(history.search_conversations)
    return registry
