"""Owner-only tool: search the owner's earlier conversations.

It reads only conversations of the caller's own profile, and the allow-list
keeps it away from the customer-service profile entirely.
"""

from __future__ import annotations

from assistant import conversations
from tools.registry import ToolContext

SNIPPET_CHARS = 160


def search_conversations(context: ToolContext, query: str, limit: int = 5) -> list[dict]:
    """Search the owner's past conversations by words in their titles or messages.

    Args:
        query: words to look for, in any language.
        limit: how many conversations to return, at most 20.
    """
    limit = max(1, min(limit, 20))
    with context.db.session() as session:
        found = conversations.list_all(session=session, search=query, profile=context.profile, limit=limit + 1)
        results = []
        for conv in found:
            if conv.id == context.conversation_id:
                continue  # the current chat is already in the model's context
            texts = [m.content for m in conv.messages if m.role in ("user", "assistant") and m.content]
            hit = next((t for t in texts if query.lower() in t.lower()), texts[0] if texts else "")
            results.append(
                {
                    "conversation_id": conv.id,
                    "title": conv.title,
                    "updated_at": conv.updated_at.isoformat(),
                    "snippet": hit[:SNIPPET_CHARS],
                }
            )
        return results[:limit]
