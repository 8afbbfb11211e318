"""Database layer: migrations, SQLite pragmas and the conversation service.

Every test that takes ``database_url`` runs on SQLite and, when
LINGXI_TEST_POSTGRES_URL is set, on PostgreSQL as well.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from assistant import conversations as convs
from assistant.conversations import NotFound, Usage
from assistant.db import SQLITE_BUSY_TIMEOUT_MS, Database, alembic_config, downgrade, migrate
from assistant.models import Base, Conversation, Message

APP_TABLES = {"conversations", "messages"}


def head_revision(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revisions(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]


def table_names(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names())


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def at(minutes: int) -> datetime:
    return datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc) + timedelta(minutes=minutes)


# --------------------------------------------------------------------------- migrations


def test_migrate_creates_tables_and_stamps_head(database_url):
    migrate(database_url)
    db = Database(database_url)
    try:
        tables = table_names(db)
        assert APP_TABLES <= tables
        assert "alembic_version" in tables
        head = head_revision(database_url)
        assert head  # the scripts have a head at all
        assert current_revisions(db) == [head]
        cols = {c["name"] for c in inspect(db.engine).get_columns("messages")}
        assert {"conversation_id", "seq", "role", "content", "reasoning_content", "tool_calls",
                "tool_call_id", "status", "cost", "cache_hit_tokens"} <= cols
        indexes = {i["name"]: i for i in inspect(db.engine).get_indexes("messages")}
        assert indexes["ix_messages_conversation_seq"]["unique"]
        assert indexes["ix_messages_conversation_seq"]["column_names"] == ["conversation_id", "seq"]
    finally:
        db.dispose()


def test_migrate_is_idempotent(database_url):
    migrate(database_url)
    migrate(database_url)
    db = Database(database_url)
    try:
        assert current_revisions(db) == [head_revision(database_url)]
    finally:
        db.dispose()


def test_downgrade_to_base_drops_tables_and_upgrade_restores_them(database_url):
    migrate(database_url)
    downgrade(database_url, "base")
    db = Database(database_url)
    try:
        tables = table_names(db)
        assert not (APP_TABLES & tables)
        assert current_revisions(db) == []

        migrate(database_url)
        assert APP_TABLES <= table_names(db)
        assert current_revisions(db) == [head_revision(database_url)]
        # And the re-created schema is usable.
        with db.session() as s:
            conv = convs.create(session=s)
            convs.add_message(conv.id, session=s, role="user", content="again")
        with db.session() as s:
            assert [m.content for m in convs.messages(conv.id, session=s)] == ["again"]
    finally:
        db.dispose()


def test_models_match_migrations(db):
    """The ORM models and the migration scripts describe the same schema."""
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_foreign_key_enforced(db):
    with pytest.raises(IntegrityError):
        with db.session() as s:
            s.add(Message(conversation_id="no-such-conversation", seq=1, role="user", content="x"))


def test_seq_unique_per_conversation(db):
    with db.session() as s:
        conv = convs.create(session=s)
        convs.add_message(conv.id, session=s, role="user", content="one")
    with pytest.raises(IntegrityError):
        with db.session() as s:
            s.add(Message(conversation_id=conv.id, seq=1, role="user", content="dup"))


# --------------------------------------------------------------------------- SQLite pragmas


def test_sqlite_connection_pragmas(tmp_path):
    path = tmp_path / "nested" / "dir" / "lingxi.db"
    db = Database(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()  # make_engine creates the folder
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 5000
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert SQLITE_BUSY_TIMEOUT_MS == 5000
    finally:
        db.dispose()


def test_sqlite_cascade_at_database_level(tmp_path):
    """With foreign_keys on, deleting a conversation row removes its messages."""
    url = f"sqlite:///{tmp_path / 'data' / 'lingxi.db'}"
    migrate(url)
    db = Database(url)
    try:
        with db.session() as s:
            conv = convs.create(session=s)
            convs.add_message(conv.id, session=s, role="user", content="hi")
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM conversations"))
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM messages")).scalar() == 0
    finally:
        db.dispose()


# --------------------------------------------------------------------------- conversation service


def test_create_defaults(db):
    with db.session() as s:
        conv = convs.create(session=s)
        conv_id = conv.id
    with db.session() as s:
        conv = convs.get(conv_id, session=s)
        assert conv.profile == "owner"
        assert conv.title == ""
        assert len(conv.id) == 32
        assert convs.totals(conv) == Usage()
        assert convs.messages(conv_id, session=s) == []


def test_add_message_increments_seq(db):
    with db.session() as s:
        conv = convs.create(session=s)
        m1 = convs.add_message(conv.id, session=s, role="user", content="a")
        m2 = convs.add_message(conv.id, session=s, role="assistant", content="b")
        other = convs.create(session=s)
        o1 = convs.add_message(other.id, session=s, role="user", content="c")
    with db.session() as s:
        m3 = convs.add_message(conv.id, session=s, role="user", content="d")
    assert (m1.seq, m2.seq, m3.seq) == (1, 2, 3)
    assert o1.seq == 1  # numbering is per conversation
    with db.session() as s:
        assert [(m.seq, m.content) for m in convs.messages(conv.id, session=s)] == [(1, "a"), (2, "b"), (3, "d")]


def test_add_message_to_missing_conversation(db):
    with db.session() as s, pytest.raises(NotFound):
        convs.add_message("0" * 32, session=s, role="user", content="x")


def test_title_from_first_user_message(db):
    with db.session() as s:
        conv = convs.create(session=s)
        convs.add_message(conv.id, session=s, role="assistant", content="Hello, how can I help?")
        assert conv.title == ""  # only a user message names the conversation
        convs.add_message(conv.id, session=s, role="user", content="  帮我  写一封\n邮件  ")
        assert conv.title == "帮我 写一封 邮件"
        convs.add_message(conv.id, session=s, role="user", content="Something else entirely")
        assert conv.title == "帮我 写一封 邮件"


def test_title_truncated_beyond_60_chars(db):
    exactly_60 = "x" * 60
    long = "".join(str(i % 10) for i in range(75))
    with db.session() as s:
        a = convs.create(session=s)
        convs.add_message(a.id, session=s, role="user", content=exactly_60)
        b = convs.create(session=s)
        convs.add_message(b.id, session=s, role="user", content=long)
        c = convs.create(session=s)
        convs.add_message(c.id, session=s, role="user", content="长" * 61)
    assert a.title == exactly_60
    assert b.title == long[:59] + "…"
    assert len(b.title) == 60
    assert c.title == "长" * 59 + "…"


def test_explicit_title_kept(db):
    with db.session() as s:
        conv = convs.create(session=s, title="Named")
        convs.add_message(conv.id, session=s, role="user", content="first")
    assert conv.title == "Named"


def test_usage_totals_accumulate(db):
    with db.session() as s:
        conv = convs.create(session=s)
        convs.add_message(conv.id, session=s, role="user", content="q")
        m = convs.add_message(
            conv.id, session=s, role="assistant", content="a",
            usage=Usage(prompt_tokens=100, completion_tokens=20, cache_hit_tokens=64, cache_miss_tokens=36, cost=0.25),
        )
        convs.add_message(
            conv.id, session=s, role="assistant", content="b",
            usage=Usage(prompt_tokens=150, completion_tokens=30, cache_hit_tokens=100, cache_miss_tokens=50, cost=0.5),
        )
        conv_id, msg_id = conv.id, m.id
    with db.session() as s:
        conv = convs.get(conv_id, session=s)
        t = convs.totals(conv)
        assert (t.prompt_tokens, t.completion_tokens, t.cache_hit_tokens, t.cache_miss_tokens) == (250, 50, 164, 86)
        assert t.cost == pytest.approx(0.75)
        msg = s.get(Message, msg_id)
        assert (msg.prompt_tokens, msg.completion_tokens, msg.cache_hit_tokens, msg.cache_miss_tokens) == (100, 20, 64, 36)
        assert msg.cost == pytest.approx(0.25)
        assert convs.summary(conv)["usage"]["prompt_tokens"] == 250


def test_add_message_bumps_updated_at(db):
    with db.session() as s:
        conv = convs.create(session=s)
        conv.updated_at = at(0)
        conv_id = conv.id
    with db.session() as s:
        convs.add_message(conv_id, session=s, role="user", content="x")
    with db.session() as s:
        updated = convs.get(conv_id, session=s).updated_at
        if updated.tzinfo is None:  # SQLite hands back naive UTC
            updated = updated.replace(tzinfo=timezone.utc)
        assert updated > at(0) + timedelta(days=1)


def test_list_all_newest_updated_first(db):
    with db.session() as s:
        ids = []
        for i, title in enumerate(["oldest", "middle", "newest"]):
            conv = convs.create(session=s, title=title)
            conv.updated_at = at(i)
            ids.append(conv.id)
    with db.session() as s:
        assert [c.title for c in convs.list_all(session=s)] == ["newest", "middle", "oldest"]
        assert [c.title for c in convs.list_all(session=s, limit=2)] == ["newest", "middle"]
        # A new message moves the oldest conversation to the top.
        convs.add_message(ids[0], session=s, role="user", content="bump")
    with db.session() as s:
        assert [c.title for c in convs.list_all(session=s)] == ["oldest", "newest", "middle"]


def test_list_all_filters_by_profile(db):
    with db.session() as s:
        convs.create(session=s, title="mine")
        convs.create(session=s, title="customer", profile="customer_service")
    with db.session() as s:
        assert [c.title for c in convs.list_all(session=s, profile="owner")] == ["mine"]
        assert [c.title for c in convs.list_all(session=s, profile="customer_service")] == ["customer"]
        assert len(convs.list_all(session=s)) == 2


@pytest.fixture
def searchable(db):
    """Conversations with distinctive titles and message texts; returns title -> id."""
    spec = [
        ("Trip planning", [("user", "Where should I go in Kyoto?"), ("assistant", "Try Fushimi Inari.")]),
        ("Recipes", [("user", "How do I make 红烧肉?"), ("assistant", "先把五花肉切块。")]),
        ("100% done", [("user", "progress report")]),
        ("1000 done", [("user", "another progress report")]),
        ("snake_case names", [("user", "naming")]),
        ("snakeXcase names", [("user", "naming too")]),
        ("Tools", [("user", "what time is it"), ("tool", "secret-tool-output")]),
    ]
    ids = {}
    with db.session() as s:
        for i, (title, msgs) in enumerate(spec):
            conv = convs.create(session=s, title=title)
            for role, content in msgs:
                convs.add_message(conv.id, session=s, role=role, content=content)
            conv.updated_at = at(i)
            ids[title] = conv.id
    return ids


def titles(db, search, **kw):
    with db.session() as s:
        return [c.title for c in convs.list_all(session=s, search=search, **kw)]


def test_search_titles_case_insensitive(db, searchable):
    assert titles(db, "TRIP") == ["Trip planning"]
    assert titles(db, "recipes") == ["Recipes"]


def test_search_message_text_case_insensitive(db, searchable):
    assert titles(db, "kyoto") == ["Trip planning"]
    assert titles(db, "FUSHIMI inari") == ["Trip planning"]  # assistant text counts too


def test_search_chinese(db, searchable):
    assert titles(db, "红烧肉") == ["Recipes"]
    assert titles(db, "五花肉") == ["Recipes"]
    assert titles(db, "寿司") == []


def test_search_wildcards_are_literal(db, searchable):
    assert titles(db, "100%") == ["100% done"]
    assert titles(db, "%") == ["100% done"]
    assert titles(db, "snake_case") == ["snake_case names"]
    assert titles(db, "_") == ["snake_case names"]


def test_search_ignores_tool_messages_and_blank_query(db, searchable):
    assert titles(db, "secret-tool-output") == []
    assert len(titles(db, "   ")) == len(searchable)
    assert titles(db, "  kyoto  ") == ["Trip planning"]


def test_search_combined_with_profile(db, searchable):
    with db.session() as s:
        conv = convs.create(session=s, profile="customer_service")
        convs.add_message(conv.id, session=s, role="user", content="Kyoto hotels?")
    assert titles(db, "kyoto", profile="owner") == ["Trip planning"]
    assert titles(db, "kyoto", profile="customer_service") == ["Kyoto hotels?"]


def test_rename(db):
    with db.session() as s:
        conv = convs.create(session=s, title="old")
        conv_id = conv.id
    with db.session() as s:
        convs.rename(conv_id, "  New   name \n", session=s)
    with db.session() as s:
        assert convs.get(conv_id, session=s).title == "New name"
        with pytest.raises(ValueError):
            convs.rename(conv_id, "", session=s)
        with pytest.raises(ValueError):
            convs.rename(conv_id, "  \n\t ", session=s)
        with pytest.raises(NotFound):
            convs.rename("f" * 32, "x", session=s)
    with db.session() as s:
        assert convs.get(conv_id, session=s).title == "New name"


def test_remove_cascades_messages(db):
    with db.session() as s:
        doomed = convs.create(session=s)
        kept = convs.create(session=s)
        for i in range(3):
            convs.add_message(doomed.id, session=s, role="user", content=f"d{i}")
        convs.add_message(kept.id, session=s, role="user", content="k")
        doomed_id, kept_id = doomed.id, kept.id
    with db.session() as s:
        convs.remove(doomed_id, session=s)
    with db.session() as s:
        with pytest.raises(NotFound):
            convs.get(doomed_id, session=s)
        assert s.scalar(select(func.count()).select_from(Message).where(Message.conversation_id == doomed_id)) == 0
        assert [m.content for m in convs.messages(kept_id, session=s)] == ["k"]
        assert s.scalar(select(func.count()).select_from(Conversation)) == 1
    with db.session() as s, pytest.raises(NotFound):
        convs.remove(doomed_id, session=s)


def test_get_with_wrong_profile_is_not_found(db):
    with db.session() as s:
        conv = convs.create(session=s, profile="owner")
        conv_id = conv.id
    with db.session() as s:
        assert convs.get(conv_id, session=s, profile="owner").id == conv_id
        assert convs.get(conv_id, session=s).id == conv_id
        with pytest.raises(NotFound):
            convs.get(conv_id, session=s, profile="customer_service")
        with pytest.raises(NotFound):
            convs.get("nope", session=s)


TOOL_CALLS = [
    {
        "id": "call_0",
        "type": "function",
        "function": {"name": "search_conversations", "arguments": '{"query": "北京烤鸭", "limit": 3}'},
    },
    {"id": "call_1", "type": "function", "function": {"name": "current_time", "arguments": "{}"}},
]


def test_to_protocol(db):
    with db.session() as s:
        conv = convs.create(session=s)
        user = convs.add_message(conv.id, session=s, role="user", content="查一下")
        calling = convs.add_message(
            conv.id, session=s, role="assistant", content="", reasoning_content="I should search.",
            tool_calls=TOOL_CALLS,
        )
        result = convs.add_message(
            conv.id, session=s, role="tool", content='{"found": 1}', tool_call_id="call_0",
            name="search_conversations",
        )
        talking_call = convs.add_message(
            conv.id, session=s, role="assistant", content="Let me check.", reasoning_content="hmm",
            tool_calls=TOOL_CALLS[1:],
        )
        answer = convs.add_message(
            conv.id, session=s, role="assistant", content="找到了。", reasoning_content="long thoughts"
        )
        conv_id = conv.id
    assert convs.to_protocol(user) == {"role": "user", "content": "查一下"}
    assert convs.to_protocol(calling) == {
        "role": "assistant",
        "content": None,
        "tool_calls": TOOL_CALLS,
        "reasoning_content": "I should search.",
    }
    assert convs.to_protocol(result) == {"role": "tool", "content": '{"found": 1}', "tool_call_id": "call_0"}
    assert convs.to_protocol(talking_call) == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": TOOL_CALLS[1:],
        "reasoning_content": "hmm",
    }
    # A plain answer leaves its reasoning out.
    assert convs.to_protocol(answer) == {"role": "assistant", "content": "找到了。"}
    # The same holds for messages read back from the database.
    with db.session() as s:
        replayed = [convs.to_protocol(m) for m in convs.messages(conv_id, session=s)]
    assert [m["role"] for m in replayed] == ["user", "assistant", "tool", "assistant", "assistant"]
    assert replayed[1]["content"] is None
    assert replayed[1]["reasoning_content"] == "I should search."
    assert "reasoning_content" not in replayed[4]


def test_tool_calls_json_round_trip_with_chinese(db):
    with db.session() as s:
        conv = convs.create(session=s)
        msg = convs.add_message(conv.id, session=s, role="assistant", tool_calls=TOOL_CALLS)
        plain = convs.add_message(conv.id, session=s, role="assistant", content="no calls", tool_calls=[])
        msg_id, plain_id = msg.id, plain.id
    with db.session() as s:
        stored = s.get(Message, msg_id)
        assert stored.tool_calls == TOOL_CALLS
        assert stored.tool_calls[0]["function"]["arguments"] == '{"query": "北京烤鸭", "limit": 3}'
        assert s.get(Message, plain_id).tool_calls is None  # empty list is stored as NULL
        assert convs.as_dict(stored)["tool_calls"] == TOOL_CALLS


def test_as_dict_shape(db):
    with db.session() as s:
        conv = convs.create(session=s)
        msg = convs.add_message(
            conv.id, session=s, role="assistant", content="partial", status="stopped", model="deepseek-chat",
            usage=Usage(prompt_tokens=5, completion_tokens=2),
        )
    d = convs.as_dict(msg)
    assert d["seq"] == 1
    assert d["status"] == "stopped"
    assert d["model"] == "deepseek-chat"
    assert d["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "cache_hit_tokens": 0,
                          "cache_miss_tokens": 0, "cost": 0.0}
    assert d["reasoning_content"] is None  # empty reasoning is stored as NULL


def test_search_non_ascii_capitals_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'data' / 'lingxi.db'}"
    migrate(url)
    db = Database(url)
    try:
        with db.session() as s:
            convs.create(session=s, title="CAFÉ Москва")
        with db.session() as s:
            assert [c.title for c in convs.list_all(session=s, search="CAFÉ")] == ["CAFÉ Москва"]
            assert [c.title for c in convs.list_all(session=s, search="москва")] == ["CAFÉ Москва"]
    finally:
        db.dispose()
