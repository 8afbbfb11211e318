"""The tool registry: schemas from signatures and docstrings, execution, allow-lists."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from assistant.config import Settings
from assistant.db import Database
from tools.builtin import default_registry
from tools.registry import PROFILES, NeedsUser, Registry, ToolContext, ToolResult, compact, make_tool, parse_docstring


# --------------------------------------------------------------------------- sample tools


def find_books(
    context: ToolContext,
    query: str,
    tags: list[str],
    sort: Literal["newest", "oldest"] = "newest",
    limit: int = 5,
    note: str | None = None,
) -> dict:
    """Find books in the owner's library by words and tags.

    This second paragraph is for humans and is not sent to the model.

    Args:
        query: words to look for in titles,
            authors and summaries.
        tags (list[str]): only books with all of these tags.
        sort: which books come first.
        limit: how many books to return.

    Returns:
        The matching books.
    """
    return {"profile": context.profile, "query": query, "tags": tags, "sort": sort, "limit": limit, "note": note}


def add(a: int, b: int = 2) -> int:
    """Add two integers.

    Args:
        a: the first.
        b: the second.
    """
    return a + b


def greet(name: str) -> str:
    """Greet someone.

    Args:
        name: who to greet.
    """
    return f"你好，{name}！"


def explode(reason: str) -> str:
    """Always fails.

    Args:
        reason: what goes wrong.
    """
    raise RuntimeError(f"kaboom: {reason}")


def pick_one(name: str) -> str:
    """Needs the user to choose.

    Args:
        name: what the user called it.
    """
    raise NeedsUser(f"Which “{name}”? / 哪个“{name}”？", [{"title": name, "id": "a"}, {"title": name, "id": "b"}])


def chinese_dict() -> dict:
    """Return a structure with Chinese text."""
    return {"城市": "北京", "人口": 21_890_000}


def no_doc(x: int) -> int:
    return x


def create_ticket(title: str, body: str = "") -> str:
    """Open a support ticket.

    Args:
        title: one-line summary of the problem.
        body: the details.
    """
    return title


OWNER_ONLY = frozenset({"find_books", "add", "greet", "explode", "chinese_dict", "pick_one"})
TEST_PROFILES = {"owner": OWNER_ONLY, "customer_service": frozenset({"greet"})}


@pytest.fixture
def registry() -> Registry:
    reg = Registry(profiles=TEST_PROFILES)
    for fn in (find_books, add, greet, explode, chinese_dict, pick_one):
        reg.register(fn)
    return reg


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'data' / 'lingxi.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def owner(tmp_path, db) -> ToolContext:
    settings = Settings(data_dir=tmp_path / "data", timezone="Asia/Shanghai")
    return ToolContext(settings=settings, db=db, profile="owner", conversation_id=None)


@pytest.fixture
def customer(owner) -> ToolContext:
    return ToolContext(settings=owner.settings, db=owner.db, profile="customer_service")


def error_of(result: ToolResult) -> str:
    assert result.ok is False
    return json.loads(result.content)["error"]


# --------------------------------------------------------------------------- schemas


def test_schema_from_signature_and_docstring():
    tool = make_tool(find_books)
    assert tool.name == "find_books"
    assert tool.description == "Find books in the owner's library by words and tags."
    assert tool.context_param == "context"
    params = tool.parameters
    assert params["type"] == "object"
    assert list(params["properties"]) == ["query", "tags", "sort", "limit", "note"]
    assert "context" not in params["properties"]
    assert params["required"] == ["query", "tags"]
    props = params["properties"]
    assert props["query"] == {"type": "string", "description": "words to look for in titles, authors and summaries."}
    assert props["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "only books with all of these tags.",
    }
    assert props["sort"]["enum"] == ["newest", "oldest"]
    assert props["sort"]["default"] == "newest"
    assert props["sort"]["description"] == "which books come first."
    assert props["limit"] == {"type": "integer", "default": 5, "description": "how many books to return."}
    assert props["note"]["default"] is None
    assert "description" not in props["note"]  # undocumented parameter


def test_schema_has_no_titles():
    text = json.dumps(make_tool(find_books).parameters)
    assert '"title"' not in text


def test_schema_envelope():
    tool = make_tool(add, name="plus")
    assert tool.schema == {
        "type": "function",
        "function": {
            "name": "plus",
            "description": "Add two integers.",
            "parameters": {
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "description": "the first."},
                    "b": {"type": "integer", "default": 2, "description": "the second."},
                },
                "required": ["a"],
            },
        },
    }


def test_schema_without_parameters():
    tool = make_tool(chinese_dict)
    assert tool.parameters["properties"] == {}
    assert tool.parameters.get("required", []) == []
    assert tool.context_param is None


def test_parameter_named_title_kept():
    params = make_tool(create_ticket).parameters
    assert params["required"] == ["title"]
    assert params["properties"]["title"] == {"type": "string", "description": "one-line summary of the problem."}


def test_parse_docstring():
    description, params = parse_docstring(find_books.__doc__)
    assert description == "Find books in the owner's library by words and tags."
    assert params == {
        "query": "words to look for in titles, authors and summaries.",
        "tags": "only books with all of these tags.",
        "sort": "which books come first.",
        "limit": "how many books to return.",
    }
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("One line only.") == ("One line only.", {})


def test_function_without_docstring_rejected():
    with pytest.raises(ValueError, match="no_doc"):
        make_tool(no_doc)


def test_duplicate_registration_rejected(registry):
    with pytest.raises(ValueError, match="add"):
        registry.register(add)
    with pytest.raises(ValueError, match="greet"):
        registry.register(add, name="greet")
    assert registry.tools["add"].fn is add


def test_schemas_filtered_by_profile(registry):
    names = [s["function"]["name"] for s in registry.schemas("owner")]
    assert names == sorted(OWNER_ONLY)
    assert [s["function"]["name"] for s in registry.schemas("customer_service")] == ["greet"]


def test_unknown_profile_raises(registry, owner):
    with pytest.raises(KeyError):
        registry.schemas("visitor")
    with pytest.raises(KeyError):
        registry.allowed("visitor")
    ctx = ToolContext(settings=owner.settings, db=owner.db, profile="visitor")
    with pytest.raises(KeyError):
        registry.execute("greet", '{"name": "x"}', context=ctx)


def test_default_registry_profiles():
    reg = default_registry()
    owner_only = {"search_conversations", "create_event", "list_events", "update_event", "delete_event",
                  "create_reminder", "list_reminders", "update_reminder", "cancel_reminder"}
    shared = {"current_time", "search_knowledge_base", "create_ticket"}
    assert set(reg.tools) == shared | owner_only
    owner_names = {s["function"]["name"] for s in reg.schemas("owner")}
    cs_names = {s["function"]["name"] for s in reg.schemas("customer_service")}
    assert owner_names == shared | owner_only
    assert cs_names == shared
    assert not owner_only & cs_names  # the widget's profile never sees calendar, reminders or history
    assert PROFILES["customer_service"] <= PROFILES["owner"]
    with pytest.raises(KeyError):
        reg.schemas("nobody")


# --------------------------------------------------------------------------- execute


def test_execute_success_with_context(registry, owner):
    result = registry.execute("find_books", '{"query": "三体", "tags": ["科幻"]}', context=owner)
    assert result.ok is True
    assert json.loads(result.content) == {
        "profile": "owner", "query": "三体", "tags": ["科幻"], "sort": "newest", "limit": 5,
    }  # "note": None left out (``compact``)
    assert "三体" in result.content  # ensure_ascii=False


def test_results_are_sent_without_empty_entries():
    value = {"a": None, "b": "", "c": [], "d": 0, "e": False, "f": [{"x": None, "y": 1}, None], "g": {"h": ""}}
    assert compact(value) == {"c": [], "d": 0, "e": False, "f": [{"y": 1}, None], "g": {}}
    assert compact("") == "" and compact([None, ""]) == [None, ""]  # only dict entries are dropped


def test_execute_str_returned_verbatim(registry, owner):
    result = registry.execute("greet", '{"name": "小明"}', context=owner)
    assert result == ToolResult(ok=True, content="你好，小明！")


def test_execute_non_str_json_encoded(registry, owner):
    result = registry.execute("add", '{"a": 40}', context=owner)
    assert result == ToolResult(ok=True, content="42")
    result = registry.execute("chinese_dict", None, context=owner)
    assert result.ok is True
    assert result.content == '{"城市": "北京", "人口": 21890000}'


def test_execute_empty_arguments_mean_no_arguments(registry, owner):
    assert registry.execute("chinese_dict", "", context=owner).ok is True


def test_execute_malformed_json(registry, owner):
    message = error_of(registry.execute("add", '{"a": 1,', context=owner))
    assert "not valid JSON" in message


@pytest.mark.parametrize("arguments", ["[1, 2]", '"a"', "3", "null"])
def test_execute_non_object_json(registry, owner, arguments):
    assert error_of(registry.execute("add", arguments, context=owner)) == "arguments must be a JSON object"


def test_execute_missing_required_argument(registry, owner):
    message = error_of(registry.execute("add", '{"b": 3}', context=owner))
    assert message.startswith("invalid arguments")
    assert "a" in message and "required" in message.lower()


def test_execute_wrong_type(registry, owner):
    message = error_of(registry.execute("add", '{"a": "forty"}', context=owner))
    assert message.startswith("invalid arguments")
    assert "a:" in message
    message = error_of(registry.execute("find_books", '{"query": "x", "tags": ["a"], "sort": "random"}', context=owner))
    assert "sort" in message


def test_execute_tool_exception_becomes_error(registry, owner):
    message = error_of(registry.execute("explode", '{"reason": "磁盘满了"}', context=owner))
    assert message == "RuntimeError: kaboom: 磁盘满了"


def test_a_tool_that_needs_the_user_answers_with_the_question_and_the_candidates(registry, owner):
    result = registry.execute("pick_one", '{"name": "周会"}', context=owner)
    payload = json.loads(result.content)
    assert payload["ok"] is False and payload["ask_user"] == "Which “周会”? / 哪个“周会”？"
    assert [c["id"] for c in payload["candidates"]] == ["a", "b"] and "error" not in payload


def test_execute_refuses_names_outside_allow_list(registry, customer):
    # "add" exists but customer_service may not use it.
    message = error_of(registry.execute("add", '{"a": 1}', context=customer))
    assert message == "tool 'add' is not available to the customer_service profile"
    assert registry.execute("greet", '{"name": "客户"}', context=customer).ok is True


def test_execute_refuses_owner_only_builtin_for_customer(customer):
    reg = default_registry()
    message = error_of(reg.execute("search_conversations", '{"query": "x"}', context=customer))
    assert "not available to the customer_service profile" in message


def test_execute_unknown_tool(owner):
    reg = Registry(profiles={"owner": frozenset({"ghost"})})
    message = error_of(reg.execute("ghost", "{}", context=owner))
    assert message == "tool 'ghost' does not exist"


def test_execute_unknown_name_not_allowed(registry, owner):
    message = error_of(registry.execute("rm_rf", "{}", context=owner))
    assert "rm_rf" in message
