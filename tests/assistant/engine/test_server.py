"""The OpenAI-compatible server (assistant/engine/server.py) and ``app.py engine`` CLI.

Plumbing (request validation, chunk shapes, usage, finish reasons, streamed == non-streamed ==
``engine.generate``) runs against the real engine on a tiny random checkpoint.  The tool-call
translation is unit-tested on scripted ``Output`` deltas, and end to end through the official
``openai`` client with ``ScriptedEngine``: a tiny random model cannot be made to write a tool
call, so that engine runs the real model (real scheduling, token counts, finish reasons and
cancellation) but replaces the *text* of its deltas with a scripted string.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest

from app import main
from assistant.engine.engine import LLMEngine
from assistant.engine.output import Output
from assistant.engine.server import create_server
from assistant.engine.toolcalls import CALL_BEGIN, CALL_END, CALLS_BEGIN, CALLS_END, TOOL_SEP
from assistant.engine.translate import ChatTranslator, CompletionTranslator
from tests.server import serve

MARKER_CHARS = ("｜", "▁")  # every DeepSeek control token contains these

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def tool_call_text(name: str, args: dict) -> str:
    return f"{CALL_BEGIN}function{TOOL_SEP}{name}\n```json\n{json.dumps(args)}\n```{CALL_END}"


class ScriptedEngine(LLMEngine):
    """The real engine whose generated text is replaced by ``script`` (see the module docstring).

    Each real delta carries the next script piece instead of its own text; the final delta
    carries whatever is left.  With an empty script the real text passes through.  Records the
    prompts it was given and how many streams were closed before the model finished.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.script: list[str] = []
        self.delay = 0.0
        self.prompts: list[list[int]] = []
        self.params: list = []
        self.closed_early = 0

    async def stream(self, prompt_ids, params=None):
        self.prompts.append(list(prompt_ids))
        self.params.append(params)
        pieces, scripted = list(self.script), bool(self.script)
        finished = False
        try:
            async for out in super().stream(prompt_ids, params):
                if scripted:
                    text = "".join(pieces) if out.finished else (pieces.pop(0) if pieces else "")
                    pieces = [] if out.finished else pieces
                    out = Output(text, out.token_ids, out.finished, out.finish_reason,
                                 out.prompt_tokens, out.completion_tokens, out.error)
                finished = out.finished
                yield out
                if self.delay:
                    await asyncio.sleep(self.delay)
        finally:
            if not finished:
                self.closed_early += 1


@pytest.fixture(scope="module")
def engine(build_ckpt):
    eng = ScriptedEngine(build_ckpt("v3_qlora"), max_batch=4)
    yield eng
    eng.close()


@pytest.fixture()
def scripted(engine):
    engine.script, engine.delay = [], 0.0
    yield engine
    engine.script, engine.delay = [], 0.0


@pytest.fixture(scope="module")
def url(engine):
    with serve(create_server(engine)) as base:
        yield base


@pytest.fixture(scope="module")
def http(url):
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c


def sse_events(response) -> list:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


# ---------------------------------------------------------------- models, health, bad requests

def test_models_and_health(http, engine):
    r = http.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == [engine.model_name]
    assert http.get("/health").json()["status"] == "ok"
    assert http.get(f"/v1/models/{engine.model_name}").json()["id"] == engine.model_name
    assert http.get("/v1/models/nope").status_code == 404


USER = [{"role": "user", "content": "hi"}]
CHAT_400 = [
    ({"model": "x"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content"),
    ({"messages": USER, "n": 2}, "n"),
    ({"messages": USER, "tool_choice": "required", "tools": [WEATHER_TOOL]}, "tool_choice"),
    ({"messages": USER, "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
      "tools": [WEATHER_TOOL]}, "tool_choice"),
    ({"messages": USER, "tools": [{"type": "function", "function": {"description": "no name"}}]},
     "tools[0].function.name"),
    ({"messages": USER, "temperature": 5}, "temperature"),
    ({"messages": USER, "top_p": 0}, "top_p"),
    ({"messages": USER, "max_tokens": 0}, "max_tokens"),
    ({"messages": USER, "stop": [""]}, "stop"),
    ({"messages": USER, "logprobs": True}, "logprobs"),
    ({"messages": USER, "response_format": {"type": "json_schema"}}, "response_format"),
    ({"messages": USER, "stream": "sometimes"}, "stream"),
]


@pytest.mark.parametrize("body,param", CHAT_400)
def test_chat_bad_request_is_400_naming_the_parameter(http, body, param):
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert param in err["message"]


@pytest.mark.parametrize("body,param", [
    ({"prompt": ["a", "b"]}, "prompt"),
    ({"prompt": "a", "echo": True}, "echo"),
    ({"prompt": "a", "logprobs": 2}, "logprobs"),
    ({"prompt": "a", "best_of": 3}, "best_of"),
    ({"prompt": [5, 10**9]}, "prompt"),
])
def test_completions_bad_request(http, body, param):
    r = http.post("/v1/completions", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def test_malformed_json_and_non_object_bodies(http):
    r = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = http.post("/v1/chat/completions", json=[1, 2])
    assert r.status_code == 400 and "JSON object" in r.json()["error"]["message"]


def test_unknown_fields_are_ignored(http):
    r = http.post("/v1/chat/completions", json={"messages": USER, "max_tokens": 2, "temperature": 0,
                                                "parallel_tool_calls": False, "frobnicate": 1})
    assert r.status_code == 200, r.text
    r = http.post("/v1/chat/completions", json={"messages": USER, "max_completion_tokens": 2, "temperature": 0,
                                                "stop": "never-seen", "seed": 7})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 2


def test_prompt_longer_than_the_context_is_a_clear_400(http, engine):
    long_text = "hello " * (engine.max_context + 10)
    for stream in (False, True):
        r = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": long_text}],
                                                    "stream": stream})
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["code"] == "context_length_exceeded" and str(engine.max_context) in err["message"]
    r = http.post("/v1/chat/completions", json={"messages": USER, "max_tokens": engine.max_context})
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"
    r = http.post("/v1/completions", json={"prompt": long_text})
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"



def test_a_chat_request_without_max_tokens_gets_the_servers_default(engine):
    # The in-process provider lowers the default (settings.local_max_tokens) so that a model
    # which never closes a tool call cannot stay silent past the agent's timeout.
    with serve(create_server(engine, default_max_tokens=7)) as base, httpx.Client(base_url=base, timeout=60) as c:
        del engine.params[:]
        assert c.post("/v1/chat/completions", json={"messages": USER}).status_code == 200
        assert c.post("/v1/chat/completions", json={"messages": USER, "max_tokens": 3}).status_code == 200
    assert [p.max_tokens for p in engine.params] == [7, 3]

# ---------------------------------------------------------------- real model plumbing

def test_chat_non_stream_and_stream_agree_with_the_engine(http, engine):
    from assistant.engine.sampler import SamplingParams

    body = {"model": "anything", "messages": [{"role": "system", "content": "Be brief."}, *USER],
            "max_tokens": 6, "temperature": 0}
    ids = engine.tokenizer.encode_chat(body["messages"])
    expected = engine.generate(ids, SamplingParams(temperature=0, max_tokens=6))

    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["object"] == "chat.completion" and reply["model"] == engine.model_name
    choice = reply["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] == expected.finish_reason
    assert reply["usage"] == {"prompt_tokens": len(ids), "completion_tokens": len(expected.token_ids),
                              "total_tokens": len(ids) + len(expected.token_ids)}
    if not any(c in expected.text for c in MARKER_CHARS):
        assert choice["message"]["content"] == expected.text

    with http.stream("POST", "/v1/chat/completions",
                     json={**body, "stream": True, "stream_options": {"include_usage": True}}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    usage_chunk, final = chunks[-1], chunks[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == reply["usage"]
    assert final["choices"][0]["finish_reason"] == choice["finish_reason"]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    assert text == (choice["message"]["content"] or "")


def test_stream_without_include_usage_has_no_usage_chunk(http):
    with http.stream("POST", "/v1/chat/completions",
                     json={"messages": USER, "max_tokens": 3, "temperature": 0, "stream": True}) as r:
        events = sse_events(r)
    assert events[-1] == "[DONE]" and all(e["choices"] for e in events[:-1])


def test_completions_stream_and_not(http, engine):
    from assistant.engine.sampler import SamplingParams

    ids = engine.tokenizer.encode("The capital of France is")
    expected = engine.generate(ids, SamplingParams(temperature=0, max_tokens=5))
    for prompt in ("The capital of France is", ["The capital of France is"], ids):
        r = http.post("/v1/completions", json={"prompt": prompt, "max_tokens": 5, "temperature": 0})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "text_completion"
        assert body["choices"][0]["text"] == expected.text
        assert body["usage"]["prompt_tokens"] == len(ids)
        assert body["usage"]["completion_tokens"] == len(expected.token_ids)
    with http.stream("POST", "/v1/completions", json={"prompt": "The capital of France is", "max_tokens": 5,
                                                      "temperature": 0, "stream": True,
                                                      "stream_options": {"include_usage": True}}) as r:
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    assert "".join(e["choices"][0]["text"] for e in events[:-2]) == expected.text
    assert events[-3]["choices"][0]["finish_reason"] == expected.finish_reason
    assert events[-2]["usage"]["completion_tokens"] == len(expected.token_ids)


# ---------------------------------------------------------------- Output -> chunks (scripted)

def outputs(pieces: list[str], finish: str = "length") -> list[Output]:
    outs = [Output(p, [i], False, None, 10, i + 1) for i, p in enumerate(pieces)]
    last = outs[-1]
    outs[-1] = Output(last.text, last.token_ids, True, finish, 10, last.completion_tokens)
    return outs


def run_translator(tr: ChatTranslator, outs: list[Output]) -> list[dict]:
    chunks = [tr.first_chunk()]
    for out in outs:
        chunks += tr.feed(out)
        if tr.done:
            break
    return chunks + tr.finish()


def ids(index: int) -> str:
    return f"call_{index}"


@pytest.mark.parametrize("step", [1, 3, 7, 1000])
def test_tool_calls_stream_in_openai_shape_without_marker_text(step):
    text = ("Let me check. " + CALLS_BEGIN + tool_call_text("get_weather", {"city": "北京"}) + "\n"
            + tool_call_text("get_time", {}) + CALLS_END + "<｜end▁of▁sentence｜>ignored")
    pieces = [text[i:i + step] for i in range(0, len(text), step)]
    tr = ChatTranslator(model="m", tools_enabled=True, make_id=ids)
    chunks = run_translator(tr, outputs(pieces))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    content = "".join(d.get("content") or "" for d in deltas)
    assert content == "Let me check. "
    pieces_of_calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
    # OpenAI's shape: the first delta of a call has its id, type and name, the rest add to the arguments.
    # (A call that is whole within one step's text comes in one delta.)
    firsts = [(tc["index"], tc["id"], tc["type"], tc["function"]["name"]) for tc in pieces_of_calls if "id" in tc]
    assert firsts == [(0, "call_0", "function", "get_weather"), (1, "call_1", "function", "get_time")]
    assert all(set(tc) == {"index", "function"} and set(tc["function"]) == {"arguments"}
               for tc in pieces_of_calls if "id" not in tc)
    joined = ["".join(tc["function"]["arguments"] for tc in pieces_of_calls if tc["index"] == i) for i in (0, 1)]
    assert joined == ['{"city": "\\u5317\\u4eac"}', "{}"]
    if step == 1:
        assert len([tc for tc in pieces_of_calls if tc["index"] == 0]) > 5  # streamed piece by piece
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert tr.done  # generation stops once the block closes

    again = ChatTranslator(model="m", tools_enabled=True, make_id=ids)
    for out in outputs(pieces):
        again.feed(out)
    reply = again.completion()
    message = reply["choices"][0]["message"]
    assert message["content"] == "Let me check. " and reply["choices"][0]["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["get_weather", "get_time"]
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"city": "北京"}


def test_tool_block_is_dropped_when_tools_are_off():
    text = "Sure." + CALLS_BEGIN + tool_call_text("get_weather", {"city": "x"}) + CALLS_END
    tr = ChatTranslator(model="m", tools_enabled=False)
    chunks = run_translator(tr, outputs([text[i:i + 2] for i in range(0, len(text), 2)]))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("content") or "" for d in deltas) == "Sure."
    assert not any("tool_calls" in d for d in deltas)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_plain_text_keeps_engine_finish_reason_and_a_cut_off_call_is_length():
    tr = ChatTranslator(model="m", tools_enabled=True)
    chunks = run_translator(tr, outputs(["Hel", "lo <", "｜"], finish="stop"))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello <｜"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert tr.usage == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}

    cut = ChatTranslator(model="m", tools_enabled=True)
    for out in outputs([CALLS_BEGIN + CALL_BEGIN + "function" + TOOL_SEP + "f\n```json\n{\"a\":"]):
        cut.feed(out)
    assert cut.completion()["choices"][0]["finish_reason"] == "length"


def test_completion_translator():
    tr = CompletionTranslator(model="m")
    chunks = []
    for out in outputs(["a", "", "b"], finish="stop"):
        chunks += tr.feed(out)
    chunks += tr.finish()
    assert [c["choices"][0]["text"] for c in chunks] == ["a", "b", ""]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert tr.completion()["choices"][0]["text"] == "ab"


# ---------------------------------------------------------------- openai client, end to end

def openai_client(url):
    from openai import OpenAI

    return OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)


def test_tool_call_round_trip_through_the_openai_client(url, scripted):
    client = openai_client(url)
    call = tool_call_text("get_weather", {"city": "Paris"})
    script = ["I'll look", " it up.", CALLS_BEGIN[:3], CALLS_BEGIN[3:] + call[:10], call[10:], CALLS_END]
    scripted.script = script
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    r = client.chat.completions.create(model="whatever", messages=messages, tools=[WEATHER_TOOL])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll look it up."
    (tc,) = choice.message.tool_calls
    assert tc.type == "function" and tc.function.name == "get_weather"
    assert json.loads(tc.function.arguments) == {"city": "Paris"}
    assert r.usage.prompt_tokens == len(scripted.prompts[-1]) and r.usage.completion_tokens >= 1
    # Tool definitions were injected into the system prompt.
    prompt = scripted.tokenizer.decode(scripted.prompts[-1])
    assert "get_weather" in prompt and "Current weather in a city" in prompt

    # Streamed: the client's chunk types parse every chunk; accumulate the deltas.
    scripted.script = script
    stream = client.chat.completions.create(model="whatever", messages=messages, tools=[WEATHER_TOOL],
                                            stream=True, stream_options={"include_usage": True})
    content, calls, finish, usage = "", {}, None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            content += ch.delta.content or ""
            for d in ch.delta.tool_calls or []:
                entry = calls.setdefault(d.index, {"id": d.id, "name": "", "arguments": ""})
                entry["name"] += d.function.name or ""
                entry["arguments"] += d.function.arguments or ""
            finish = ch.finish_reason or finish
    assert content == "I'll look it up." and finish == "tool_calls" and usage.total_tokens > 0
    assert [c["name"] for c in calls.values()] == ["get_weather"]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}

    # Second turn: the assistant's call and the tool result go back; the model answers.
    scripted.script = ["It is ", "sunny."]
    history = messages + [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": tc.id, "type": "function",
                         "function": {"name": "get_weather", "arguments": tc.function.arguments}}]},
        {"role": "tool", "tool_call_id": tc.id, "content": '{"sky": "sunny"}'},
    ]
    r = client.chat.completions.create(model="whatever", messages=history, tools=[WEATHER_TOOL], max_tokens=4)
    assert r.choices[0].message.content == "It is sunny."
    assert r.choices[0].message.tool_calls is None
    prompt = scripted.tokenizer.decode(scripted.prompts[-1])
    assert CALLS_BEGIN in prompt and "get_weather" in prompt and '{"sky": "sunny"}' in prompt


def test_tool_choice_none_sends_no_tools_and_surfaces_no_calls(url, scripted):
    client = openai_client(url)
    scripted.script = ["Fine.", CALLS_BEGIN + tool_call_text("get_weather", {"city": "x"}) + CALLS_END]
    r = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                       tools=[WEATHER_TOOL], tool_choice="none", max_tokens=4)
    assert r.choices[0].message.content == "Fine." and not r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason == "stop"
    assert "Current weather in a city" not in scripted.tokenizer.decode(scripted.prompts[-1])


def test_openai_client_sees_400_as_bad_request(url):
    import openai

    client = openai_client(url)
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], n=3)
    assert exc.value.body["param"] == "n"


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_client_disconnect_cancels_the_stream(url, scripted):
    scripted.delay = 0.05  # 200 tokens would take 10 s; we leave after two chunks
    before = scripted.closed_early
    with httpx.Client(timeout=30) as c:
        with c.stream("POST", url + "/v1/chat/completions",
                      json={"messages": USER, "max_tokens": 200, "stream": True}) as r:
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data: ") and json.loads(line[6:])["choices"][0]["delta"].get("content") is not None:
                    break
    assert wait_for(lambda: scripted.closed_early > before)


def test_client_disconnect_cancels_a_non_stream_request(url, scripted):
    scripted.delay = 0.05
    before = scripted.closed_early
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"messages": USER, "max_tokens": 200}).encode()
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(0.3)
    assert wait_for(lambda: scripted.closed_early > before)


# ---------------------------------------------------------------- CLI

def test_engine_generate_cli_json_is_deterministic(build_ckpt, capsys):
    path = build_ckpt("v3_qlora")
    argv = ["engine", "generate", "--model", str(path), "--prompt", "hi", "--max-tokens", "8",
            "--temperature", "0", "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert set(first) == {"text", "token_ids"} and len(first["token_ids"]) == 8
    assert all(isinstance(t, int) for t in first["token_ids"]) and isinstance(first["text"], str)
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == first


def test_engine_cli_bad_model_is_one_line_exit_2(tmp_path, capsys):
    assert main(["engine", "generate", "--model", str(tmp_path / "missing"), "--prompt", "hi"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lingxi engine:") and "not found" in err and "\n" not in err
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text(json.dumps({"model_type": "llama",
                                                                 "architectures": ["LlamaForCausalLM"]}))
    (tmp_path / "llama" / "tokenizer.json").write_text("{}")
    assert main(["engine", "serve", "--model", str(tmp_path / "llama")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lingxi engine:") and "llama" in err and "\n" not in err
    (tmp_path / "llama" / "config.json").write_text("{not json")
    assert main(["engine", "generate", "--model", str(tmp_path / "llama"), "--prompt", "hi"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lingxi engine:") and "config.json" in err and "\n" not in err


def test_engine_cli_device(build_ckpt, capsys):
    import torch

    argv = ["engine", "generate", "--model", str(build_ckpt("v3_qlora")), "--prompt", "hi", "--max-tokens", "2"]
    assert main(argv + ["--device", "cpu"]) == 0
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the refusal below needs a machine without one")
    assert main(argv + ["--device", "auto"]) == 0  # auto picks the CPU here
    capsys.readouterr()
    assert main(argv + ["--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lingxi engine:") and "CUDA is not available" in err and "\n" not in err


def test_engine_serve_cli_answers_the_openai_client(build_ckpt):
    """``python app.py engine serve`` in a subprocess: models, a chat turn, a clean shutdown."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tests.server import free_port

    port = free_port()
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, "app.py", "engine", "serve", "--model", str(build_ckpt("v3_qlora")),
                             "--port", str(port), "--threads", "1"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"

        def up():
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read())
            try:
                return httpx.get(base + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(up, timeout=90)
        client = openai_client(base)
        assert [m.id for m in client.models.list()] == ["v3_qlora"]
        r = client.chat.completions.create(model="v3_qlora", messages=[{"role": "user", "content": "hi"}],
                                           max_tokens=2, temperature=0)
        assert r.usage.completion_tokens <= 2 and r.choices[0].finish_reason in ("stop", "length")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert proc.returncode in (0, -signal.SIGTERM)
