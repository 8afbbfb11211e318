"""The HTTP API over a real loopback server, with the scripted model server behind it."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from assistant.web import create_app
from tests.fakes.openai_server import Reply, ToolCall
from tests.server import serve


@pytest.fixture
def api(lingxi):
    with serve(create_app(lingxi)) as base:
        with httpx.Client(base_url=base, timeout=30) as client:
            yield client


def sse_events(response: httpx.Response) -> list[dict]:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: "):]))
    return events


def chat(api: httpx.Client, **body) -> tuple[httpx.Response, list[dict]]:
    with api.stream("POST", "/api/chat", json=body) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        return response, sse_events(response)


def test_chat_streams_sse_events_with_tool_steps(api, fake_llm):
    fake_llm.queue(
        Reply.tool_calls([ToolCall("current_time", {}, id="t1")], reasoning="check clock"),
        Reply.text("现在是下午。", reasoning="done"),
    )
    response, events = chat(api, message="现在几点？")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    types = [e["type"] for e in events]
    assert {"reasoning", "tool_call", "tool_result", "delta", "usage", "done"} <= set(types)
    assert types[-1] == "done"
    cid = events[-1]["conversation_id"]
    assert response.headers["x-conversation-id"] == cid
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "现在是下午。"
    assert types.index("tool_result") < types.index("delta")

    detail = api.get(f"/api/conversations/{cid}").json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert detail["messages"][1]["reasoning_content"] == "check clock"
    assert detail["usage"]["prompt_tokens"] > 0


def test_conversation_list_search_rename_delete(api, fake_llm):
    fake_llm.queue(Reply.text("Paris."), Reply.text("北京。"))
    _, first = chat(api, message="Capital of France?")
    _, second = chat(api, message="中国的首都？")
    cid1, cid2 = first[-1]["conversation_id"], second[-1]["conversation_id"]

    listed = api.get("/api/conversations").json()["conversations"]
    assert [c["id"] for c in listed] == [cid2, cid1]
    assert [c["id"] for c in api.get("/api/conversations", params={"search": "首都"}).json()["conversations"]] == [cid2]
    assert [c["id"] for c in api.get("/api/conversations", params={"search": "PARIS"}).json()["conversations"]] == [cid1]

    assert api.patch(f"/api/conversations/{cid1}", json={"title": "Geography"}).json()["title"] == "Geography"
    assert api.patch(f"/api/conversations/{cid1}", json={"title": "  "}).status_code == 400
    assert api.delete(f"/api/conversations/{cid1}").status_code == 204
    assert api.get(f"/api/conversations/{cid1}").status_code == 404
    assert api.delete(f"/api/conversations/{cid1}").status_code == 404
    assert [c["id"] for c in api.get("/api/conversations").json()["conversations"]] == [cid2]


def test_follow_up_in_same_conversation_sends_history(api, fake_llm):
    fake_llm.queue(Reply.text("Hi Ann."), Reply.text("Your name is Ann."))
    _, events = chat(api, message="I am Ann")
    cid = events[-1]["conversation_id"]
    _, events = chat(api, message="What is my name?", conversation_id=cid)
    assert events[-1]["conversation_id"] == cid
    sent = [m["content"] for m in fake_llm.requests[1].body["messages"][1:]]
    assert sent == ["I am Ann", "Hi Ann.", "What is my name?"]


@pytest.mark.parametrize("body,status,code", [
    ({"message": ""}, 400, "empty"),
    ({"message": "x" * 20000}, 400, "too_long"),
    ({}, 400, "empty"),
    ({"message": "hi", "profile": "root"}, 400, "bad_profile"),
    ({"message": "hi", "conversation_id": "nope"}, 404, "not_found"),
    ({"message": 12}, 400, "bad_request"),
])
def test_bad_chat_requests_get_clear_errors(api, body, status, code):
    response, _ = chat(api, **body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert api.get("/api/conversations").json()["conversations"] == []


def test_dead_provider_error_event_then_retry(api, fake_llm):
    fake_llm.queue(Reply.error(401, "Authentication Fails"))
    _, events = chat(api, message="hello")
    error = next(e for e in events if e["type"] == "error")
    assert error["code"] == "auth" and "API key" in error["message"]
    assert "sk-test-secret" not in json.dumps(events)
    cid = events[-1]["conversation_id"]
    fake_llm.queue(Reply.text("hello again"))
    _, events = chat(api, conversation_id=cid, retry=True)
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "hello again"


def test_stop_endpoint_stops_a_streaming_reply(api, fake_llm):
    fake_llm.queue(Reply.text("滴答" * 200, chunk_size=1, chunk_delay=0.01))
    events = []
    with api.stream("POST", "/api/chat", json={"message": "count"}) as response:
        cid = response.headers["x-conversation-id"]
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["type"] == "delta" and len(events) == 3:
                    assert api.post(f"/api/conversations/{cid}/stop").json() == {"stopped": True}
    assert events[-1] == {"type": "done", "conversation_id": cid, "stopped": True}
    last = api.get(f"/api/conversations/{cid}").json()["messages"][-1]
    assert last["status"] == "stopped" and 0 < len(last["content"]) < 400


def test_client_disconnect_keeps_partial_reply(api, fake_llm, lingxi):
    fake_llm.queue(Reply.text("abc" * 300, chunk_size=1, chunk_delay=0.01))
    with api.stream("POST", "/api/chat", json={"message": "go"}) as response:
        cid = response.headers["x-conversation-id"]
        for line in response.iter_lines():
            if '"delta"' in line:
                break
    for _ in range(100):
        messages = api.get(f"/api/conversations/{cid}").json()["messages"]
        if len(messages) == 2:
            break
        threading.Event().wait(0.05)
    assert messages[-1]["status"] == "stopped"
    assert 0 < len(messages[-1]["content"]) < 900


def test_healthz(api):
    response = api.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"
