"""Conversation storage: the service functions the agent, API and UI call.

Each function takes a keyword-only SQLAlchemy ``session`` and works in the
caller's transaction. They store and read messages in the shape the
chat-completions protocol needs; they never call a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from assistant.models import Conversation, Message, utcnow

TITLE_CHARS = 60


class NotFound(LookupError):
    """No conversation with that id (or not visible to the caller)."""


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hit_tokens: int = 0
    cache_miss_tokens: int = 0
    cost: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def create(*, session: Session, profile: str = "owner", title: str = "") -> Conversation:
    conv = Conversation(profile=profile, title=title)
    session.add(conv)
    session.flush()
    return conv


def get(conversation_id: str, *, session: Session, profile: str | None = None) -> Conversation:
    conv = session.get(Conversation, conversation_id)
    if conv is None or (profile is not None and conv.profile != profile):
        raise NotFound(conversation_id)
    return conv


def list_all(
    *, session: Session, search: str = "", profile: str | None = None, limit: int = 200
) -> list[Conversation]:
    """Newest first.

    ``search`` is split into words; a conversation matches when every word is
    in its title or in one of its user or assistant messages, case-insensitively.
    """
    query = select(Conversation).order_by(Conversation.updated_at.desc()).limit(limit)
    if profile:
        query = query.where(Conversation.profile == profile)
    for word in search.lower().split():
        pattern = f"%{_escape_like(word)}%"
        in_messages = (
            select(Message.conversation_id)
            .where(func.lower(Message.content).like(pattern, escape="\\"))
            .where(Message.role.in_(("user", "assistant")))
        )
        query = query.where(
            or_(func.lower(Conversation.title).like(pattern, escape="\\"), Conversation.id.in_(in_messages))
        )
    return list(session.scalars(query))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def rename(conversation_id: str, title: str, *, session: Session) -> Conversation:
    conv = get(conversation_id, session=session)
    title = " ".join(title.split())
    if not title:
        raise ValueError("title must not be empty")
    conv.title = title[:200]
    return conv


def remove(conversation_id: str, *, session: Session) -> None:
    conv = get(conversation_id, session=session)
    # Explicit delete so SQLite without FK enforcement loses no orphans either.
    session.execute(delete(Message).where(Message.conversation_id == conv.id))
    session.delete(conv)


def messages(conversation_id: str, *, session: Session) -> list[Message]:
    return list(
        session.scalars(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.seq))
    )


def add_message(
    conversation_id: str,
    *,
    session: Session,
    role: str,
    content: str = "",
    reasoning_content: str | None = None,
    tool_calls: list[dict] | None = None,
    tool_call_id: str | None = None,
    name: str | None = None,
    status: str = "complete",
    error: str | None = None,
    model: str | None = None,
    usage: Usage | None = None,
) -> Message:
    conv = get(conversation_id, session=session)
    seq = session.scalar(select(func.coalesce(func.max(Message.seq), 0)).where(Message.conversation_id == conv.id))
    msg = Message(
        conversation_id=conv.id,
        seq=seq + 1,
        role=role,
        content=content,
        reasoning_content=reasoning_content or None,
        tool_calls=tool_calls or None,
        tool_call_id=tool_call_id,
        name=name,
        status=status,
        error=error,
        model=model,
    )
    usage = usage or Usage()
    for key, value in usage.as_dict().items():
        setattr(msg, key, value)
        setattr(conv, key, (getattr(conv, key) or 0) + value)
    if role == "user" and not conv.title:
        conv.title = title_from(content)
    conv.updated_at = utcnow()
    session.add(msg)
    session.flush()
    return msg


def totals(conv: Conversation) -> Usage:
    return Usage(
        prompt_tokens=conv.prompt_tokens,
        completion_tokens=conv.completion_tokens,
        cache_hit_tokens=conv.cache_hit_tokens,
        cache_miss_tokens=conv.cache_miss_tokens,
        cost=conv.cost,
    )


def to_protocol(msg: Message) -> dict[str, Any]:
    """One stored message as a chat-completions message.

    DeepSeek wants ``reasoning_content`` back only on assistant turns that made
    tool calls (400 "Missing reasoning_content" otherwise); on plain answers it
    is left out to save tokens.
    """
    out: dict[str, Any] = {"role": msg.role, "content": msg.content or ""}
    if msg.role == "assistant" and msg.tool_calls:
        out["tool_calls"] = msg.tool_calls
        if not msg.content:
            out["content"] = None
        if msg.reasoning_content:
            out["reasoning_content"] = msg.reasoning_content
    if msg.role == "tool":
        out["tool_call_id"] = msg.tool_call_id
    return out


def as_dict(msg: Message) -> dict[str, Any]:
    """A message for the HTTP API and the UI."""
    return {
        "id": msg.id,
        "seq": msg.seq,
        "role": msg.role,
        "content": msg.content,
        "reasoning_content": msg.reasoning_content,
        "tool_calls": msg.tool_calls,
        "tool_call_id": msg.tool_call_id,
        "name": msg.name,
        "status": msg.status,
        "error": msg.error,
        "model": msg.model,
        "usage": {k: getattr(msg, k) for k in Usage.__dataclass_fields__},
        "created_at": msg.created_at.isoformat() if msg.created_at else None,
    }


def summary(conv: Conversation) -> dict[str, Any]:
    return {
        "id": conv.id,
        "title": conv.title,
        "profile": conv.profile,
        "created_at": conv.created_at.isoformat() if conv.created_at else None,
        "updated_at": conv.updated_at.isoformat() if conv.updated_at else None,
        "usage": totals(conv).as_dict(),
    }
