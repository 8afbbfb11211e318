"""The application object: settings, database, tools and agent, wired once.

``Lingxi.create(settings)`` builds everything a process needs and applies
migrations. The HTTP API, the UI and the CLI take this object instead of
reaching for globals. ``RunManager`` lets one place (a stop button, an API
call) stop a reply that another is streaming.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from assistant.agent import Agent, Visitor
from assistant.config import Settings, SettingsError
from assistant.context import TokenCounter
from assistant.db import Database
from assistant.firing import Firer
from assistant.providers import ModelChoice
from assistant.ratelimit import RateLimiter
from assistant.security import Keys
from assistant.scheduler import ReminderScheduler
from rag.ingest import KnowledgeBase
from assistant.streaming import Event
from tools.builtin import default_registry
from tools.registry import Registry


@dataclass
class RunManager:
    """Stop flags of the replies now streaming, by conversation id."""

    _flags: dict[str, threading.Event] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, conversation_id: str) -> threading.Event:
        with self._lock:
            flag = self._flags[conversation_id] = threading.Event()
            return flag

    def end(self, conversation_id: str, flag: threading.Event) -> None:
        with self._lock:
            if self._flags.get(conversation_id) is flag:
                del self._flags[conversation_id]

    def stop(self, conversation_id: str) -> bool:
        """Ask the reply streaming in this conversation to stop; False if none is."""
        with self._lock:
            flag = self._flags.get(conversation_id)
        if flag is None:
            return False
        flag.set()
        return True

    def active(self, conversation_id: str) -> bool:
        with self._lock:
            return conversation_id in self._flags


@dataclass
class Lingxi:
    settings: Settings
    db: Database
    registry: Registry
    counter: TokenCounter
    agent: Agent
    runs: RunManager
    firer: Firer
    scheduler: ReminderScheduler
    kb: KnowledgeBase
    keys: Keys
    limiter: RateLimiter
    local: Any = None  # assistant.engine.provider.LocalProvider when the local engine is the provider

    @classmethod
    def create(cls, settings: Settings, *, migrate: bool = True, start_engine: bool = True) -> Lingxi:
        """Build the app; ``start_engine=False`` for commands that never ask the model (kb, benchmarks).

        Raises ``assistant.config.SettingsError`` before touching any data when
        the local engine is the provider and its checkpoint is missing.
        """
        local = None
        if settings.provider == "local":
            settings = settings.resolved()  # the engine's loopback URL below must not read as "openai"
            if start_engine:
                settings.check_local_model()  # before any data is touched
                from assistant.engine.provider import LocalProvider

                try:
                    local = LocalProvider.start(settings)
                except Exception as exc:  # a broken checkpoint: one line for the user, the cause chained
                    hint = " (set LINGXI_LLM_API_KEY or DEEPSEEK_API_KEY to use DeepSeek instead)" \
                        if settings.bundled_model_in_use else ""
                    raise SettingsError(f"the local model at {settings.local_model_path} did not load: {exc}{hint}") \
                        from exc
                # Everything downstream talks to the engine like any OpenAI-compatible server.
                settings = settings.model_copy(update={"llm_base_url": local.base_url, "llm_model": local.model_name})
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.db_url)
        if migrate:
            db.migrate()
        registry = default_registry()
        counter = TokenCounter()
        kb = KnowledgeBase(settings=settings, db=db, counter=counter)
        agent = Agent(settings=settings, db=db, registry=registry, counter=counter, kb=kb)
        firer = Firer(settings=settings, db=db)
        return cls(
            settings=settings, db=db, registry=registry, counter=counter, agent=agent, runs=RunManager(),
            firer=firer, scheduler=ReminderScheduler(firer, poll_seconds=settings.reminder_poll_seconds),
            kb=kb, keys=Keys(settings, db), limiter=RateLimiter(), local=local,
        )

    async def reply(
        self, conversation_id: str, *, profile: str, choice: ModelChoice | None = None, visitor: Visitor | None = None
    ) -> AsyncIterator[Event]:
        """Stream the agent's answer to the conversation's last turn; stoppable via ``runs``."""
        flag = self.runs.begin(conversation_id)
        try:
            async for event in self.agent.run(
                conversation_id, profile=profile, choice=choice, stop=flag, visitor=visitor
            ):
                yield event
        finally:
            self.runs.end(conversation_id, flag)

    def close(self) -> None:
        self.scheduler.shutdown()
        self.db.dispose()
        if self.local is not None:
            self.local.close()
