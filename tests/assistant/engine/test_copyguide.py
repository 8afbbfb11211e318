"""Copy-guided tool arguments: the scanner finds the argument being written, the guide keeps only
tokens that quote the conversation, and it changes nothing anywhere else."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
import torch

from assistant.engine.argschema import guided_arguments, typed_arguments, value_kind
from assistant.engine.copyguide import CopyGuide, guide_for, warm
from assistant.engine import quotes
from assistant.engine.quotes import id_values, inside_words, quotable
from assistant.engine.toolcalls import render_tool_calls

TOOLS = [{"type": "function", "function": {"name": "create_ticket", "parameters": {"type": "object", "properties": {
    "contact": {"type": "string"}, "summary": {"type": "string"},
    "priority": {"type": "string", "enum": ["low", "high"]}, "count": {"type": "integer"}}}}}]
MESSAGES = [
    {"role": "system", "content": "You are helpful. zebra@zoo.example"},
    {"role": "user", "content": "请转人工：退款还没到账。联系我 liu.yang@example.org 或 13812345678"},
    {"role": "tool", "content": json.dumps({"ok": True, "events": [{"id": "9f2c41ab", "title": "季度复盘"}]}, ensure_ascii=False)},
]


def _head(name: str, args_prefix: str) -> str:
    """A call block cut inside its arguments, as generated so far."""
    full = render_tool_calls([{"function": {"name": name, "arguments": "{}"}}])
    return full[: full.index("{}")] + args_prefix


def test_token_bytes_spell_the_text(chat, vocab):
    text = "给王总回电话 liu.yang@example.org “引号” 🙂 ```json\n{\"a\": 1}"
    ids = chat.encode(text)
    assert b"".join(vocab.token_bytes[i] for i in ids) == text.encode()
    assert vocab.call_begin is not None and vocab.call_end is not None and vocab.tool_sep is not None


def test_guided_arguments_are_free_text_strings_only():
    assert guided_arguments(TOOLS) == {"create_ticket": frozenset({"contact", "summary"})}
    optional = {"name": "t", "parameters": {"properties": {
        "when": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "tz": {"type": ["string", "null"]}, "mode": {"anyOf": [{"enum": ["a", "b"]}, {"type": "null"}]},
        "n": {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "k": {"const": "x", "type": "string"}}}}
    assert guided_arguments([optional]) == {"t": frozenset({"when", "tz"})}


def test_malformed_tool_schemas_are_left_unguided_not_an_error(chat, vocab):
    odd = [{"type": "function", "function": {"name": "a", "parameters": {"properties": ["x", "y"]}}},
           {"type": "function", "function": {"name": "b", "parameters": {"properties": {"q": "not a schema"}}}},
           {"type": "function", "function": {"name": "c", "parameters": None}},
           {"type": "function", "function": {"description": "no name"}}]
    assert guided_arguments(odd) == {"a": frozenset(), "b": frozenset(), "c": frozenset()}
    guide = CopyGuide(vocab, MESSAGES, odd)
    logits = torch.randn(len(vocab.token_bytes), generator=torch.Generator().manual_seed(2))
    out = guide.mask(logits, chat.encode(_head("a", '{"x": "')))
    assert out is logits  # a value of a parameter the schema does not describe: untouched


def test_quotes_start_and_end_on_word_boundaries(vocab):
    guide = CopyGuide(vocab, MESSAGES, TOOLS)
    assert guide._quoted("liu.yang@example.org".encode(), True) and guide._quoted(b"13812345678", True)
    assert guide._quoted("退款".encode(), True) and guide._quoted("联系我 liu".encode(), False)
    assert not guide._quoted(b"ang@example.org", False)  # starts inside "yang"
    assert not guide._quoted(b"yang@example.org", False) and not guide._quoted(b"liu.", True)  # an address is whole
    assert not guide._quoted(b"liu", True) and guide._quoted(b"liu", False)
    assert not guide._quoted(b"1381234", True) and not guide._quoted(b"li", True)  # ends inside a word
    assert guide._quoted(b"li", False)  # may still grow into "liu"
    assert not guide._quoted(b"nowhere", False)
    assert guided_arguments([{"name": "bare", "parameters": {"properties": {"q": {"type": "string"}}}}]) == \
        {"bare": frozenset({"q"})}


def test_chinese_quotes_start_and_end_between_words(vocab):
    said = '帮我把带猫打疫苗改成下周一早上8点半，备注"买打印机墨盒"'
    guide = CopyGuide(vocab, [{"role": "user", "content": said}], TOOLS)
    assert guide._quoted("带猫打疫苗".encode(), True) and guide._quoted("下周一早上8点半".encode(), True)
    assert not guide._quoted("带猫打疫".encode(), True)  # ends inside 疫苗
    assert guide._quoted("带猫打疫".encode(), False)  # may still grow into it
    assert not guide._quoted("苗改成".encode(), False) and not guide._quoted("周一".encode(), False)  # start inside
    # the JSON-escaped copy of the message (after \") is cut by the same words
    assert not guide._quoted("买打印机墨".encode(), True) and guide._quoted("买打印机墨盒".encode(), True)
    assert not guide._quoted("周一早上".encode(), False)  # 下周一 is one word, a weekday


def test_phone_numbers_in_digit_groups_are_quoted_whole(vocab):
    said = "call 186 1111 3333 or +49 30 1234567, Room 4 8:30am"
    guide = CopyGuide(vocab, [{"role": "user", "content": said}], TOOLS)
    assert guide._quoted(b"186 1111 3333", True) and guide._quoted(b"+49 30 1234567", True)
    assert not guide._quoted(b"186 1111", True) and not guide._quoted(b"1111 3333", False)
    assert not guide._quoted(b"30 1234567", False)
    assert guide._quoted(b"Room 4", True) and guide._quoted(b"8:30am", True)  # a room and a time, not a number


def test_inside_words_are_offsets_within_chinese_words_only(monkeypatch):
    ctx = quotable([{"role": "user", "content": "给房东发邮件 ok"}, {"role": "user", "content": "理发"}])
    inside = inside_words(ctx)
    text = ctx.decode()
    cuts = {len(text[:i].encode()) for i in range(1, len(text))} & inside
    assert cuts == inside and inside  # whole-character offsets, some found
    assert {text.encode()[:o].decode()[-1] + text.encode()[o:].decode()[0] for o in inside} >= {"房东", "理发"}
    assert all(not text.encode()[:o].decode().endswith(("东", "件")) for o in inside)  # 给/房东/发邮件: cuts there
    assert inside_words(b"no chinese here\0at all") == frozenset()
    monkeypatch.setattr(quotes, "_segmenter", lambda: None)  # no jieba (the device machines): characters only
    assert inside_words(ctx) == frozenset()


def test_quotable_is_the_users_words_with_their_escaped_forms():
    ctx = quotable(MESSAGES + [{"role": "user", "content": 'say "hi"'},
                               {"role": "assistant", "content": "Sure, what's your contact?"}])
    assert b"liu.yang@example.org" in ctx and b"zebra" not in ctx  # the system prompt would allow anything
    assert b"9f2c41ab" not in ctx and b"contact" not in ctx  # tools' and the assistant's words are not the user's
    assert b'say \\"hi\\"' in ctx and b"\0" in ctx


@pytest.mark.parametrize("prefix,expected", [
    ('{"contact": "liu', b"liu"), ('{"summary": "', b""), ('{"contact": "a\\"b', b'a\\"b'),
    ('{"contact"', None), ('{"priority": "hi', b"hi"), ('{"count": 3, "summary": "退', "退".encode()),
    ('{"contact": "x", "summary": "y"}', None), ('{"contact": "x", ', None),
])
def test_the_scanner_finds_the_guided_value_being_written(chat, vocab, prefix, expected):
    guide = CopyGuide(vocab, MESSAGES, TOOLS)
    guide.mask(torch.zeros(len(vocab.token_bytes)), chat.encode(_head("create_ticket", prefix)))
    sc = guide.scanner
    assert (sc.cur if sc.in_str and sc.is_value and sc.top and guide.guided(sc) else None) == expected


def test_outside_a_guided_value_the_logits_are_untouched(chat, vocab):
    logits = torch.randn(len(vocab.token_bytes), generator=torch.Generator().manual_seed(0))
    for text in ("Hello there", _head("create_ticket", '{"tags": ["a", "'),
                 _head("unknown_tool", '{"contact": "'), _head("unknown_tool", '{"contact": "x"}\n```')):
        assert CopyGuide(vocab, MESSAGES, TOOLS).mask(logits, chat.encode(text)) is logits


def _greedy_value(chat, vocab, guide, prefix: str, seed: int, steps: int = 40, name: str = "create_ticket") -> str:
    """Greedy decoding over random logits from ``prefix`` until the value's closing quote."""
    gen = torch.Generator().manual_seed(seed)
    out = chat.encode(_head(name, prefix))
    start = len(out)
    for _ in range(steps):
        logits = torch.randn(len(vocab.token_bytes), generator=gen)
        if guide is not None:
            logits = guide.mask(logits, out)
        out.append(int(torch.argmax(logits)))
        text = b"".join(vocab.token_bytes[i] for i in out[start:])
        if b'"' in text:
            return text[: text.index(b'"')].decode("utf-8", "replace")
    return b"".join(vocab.token_bytes[i] for i in out[start:]).decode("utf-8", "replace")


def _whole_quote(value: str, said: str) -> bool:
    """``value`` occurs in ``said`` neither starting nor ending between two ASCII letters or digits."""
    def cut(i: int) -> bool:
        return 0 < i < len(said) and all(c.isascii() and c.isalnum() for c in said[i - 1 : i + 1])

    starts = [m.start() for m in re.finditer(f"(?={re.escape(value)})", said)]
    return any(not cut(i) and not cut(i + len(value)) for i in starts)


def test_guided_values_are_quotes_of_the_conversation_whatever_the_logits(chat, vocab):
    said = quotable(MESSAGES).decode()
    guided = [_greedy_value(chat, vocab, CopyGuide(vocab, MESSAGES, TOOLS), '{"contact": "', s) for s in range(30)]
    assert all(v and _whole_quote(v, said) for v in guided), [v for v in guided if not _whole_quote(v, said)]
    assert len(set(guided)) > 5  # the model's logits still choose which quote
    unguided = [_greedy_value(chat, vocab, None, '{"contact": "', s) for s in range(30)]
    assert sum(v in said for v in unguided) < 5  # the same logits unguided write anything


def test_a_started_quote_is_continued_not_restarted(chat, vocab):
    for seed in range(20):
        value = _greedy_value(chat, vocab, CopyGuide(vocab, MESSAGES, TOOLS), '{"contact": "liu.y', seed)
        assert ("liu.y" + value) in quotable(MESSAGES).decode()


def test_keep_bounds_the_allowed_tokens_to_the_most_likely(chat, vocab):
    guide = CopyGuide(vocab, MESSAGES, TOOLS, keep=3)
    logits = torch.randn(len(vocab.token_bytes), generator=torch.Generator().manual_seed(1))
    out = guide.mask(logits, chat.encode(_head("create_ticket", '{"summary": "')))
    kept = torch.isfinite(out).nonzero().flatten().tolist()
    assert len(kept) == 3 and all(out[i] == logits[i] for i in kept)
    allowed = [t for t in torch.argsort(logits, descending=True).tolist() if guide.allows(t)]
    assert sorted(kept) == sorted(allowed[:3])


def test_guide_for_follows_the_checkpoint_and_can_be_forced(vocab):
    engine = SimpleNamespace(config=SimpleNamespace(raw={"lingxi_copy_arguments": True}), guide_vocab=vocab)
    assert isinstance(guide_for(engine, MESSAGES, TOOLS), CopyGuide)
    assert guide_for(engine, MESSAGES, None) is None
    assert guide_for(engine, MESSAGES, TOOLS, enabled=False) is None
    engine.config.raw = {}
    assert guide_for(engine, MESSAGES, TOOLS) is None
    assert isinstance(guide_for(engine, MESSAGES, TOOLS, enabled=True), CopyGuide)


def test_through_the_engine_a_random_model_quotes_the_conversation(build_ckpt):
    """LLMEngine + sampler + guide on a random checkpoint (the real DeepSeek tokenizer): whatever the
    untrained model prefers, the contact it writes is a quote of the conversation."""
    from assistant.engine.engine import LLMEngine
    from assistant.engine.sampler import SamplingParams

    with LLMEngine(build_ckpt("v3_qlora"), max_batch=2) as eng:
        text = "liu.yang@example.org 或 13812345678"
        assert b"".join(eng.guide_vocab.token_bytes[i] for i in eng.tokenizer.encode(text)) == text.encode()
        # The prompt as a chat would end it, short of the context of 256: the user's words, then the call.
        head = eng.tokenizer.encode(_head("create_ticket", '{"contact": "'), add_bos=False)
        prompt = eng.tokenizer.encode(MESSAGES[1]["content"] + "\n") + head
        said = quotable(MESSAGES).decode()
        values = []
        for guided in (True, False):
            params = SamplingParams(temperature=0, max_tokens=12,
                                    guide=CopyGuide(eng.guide_vocab, MESSAGES, TOOLS).prefill(head) if guided else None)
            values.append(eng.generate(prompt, params).text.split('"')[0])
    assert values[0] and values[0] in said, values
    assert values[1] not in said, values  # the same model unguided writes something else


def _allowed_texts(chat, vocab, guide, prefix: str, name: str = "create_ticket") -> list[str]:
    guide.keep = len(vocab.token_bytes)
    logits = torch.zeros(len(vocab.token_bytes))
    out = guide.mask(logits, chat.encode(_head(name, prefix)))
    return [vocab.token_bytes[i].decode("utf-8", "replace") for i in torch.isfinite(out).nonzero().flatten().tolist()]


@pytest.mark.parametrize("prefix", ['{"contact"', '{"contact": "liu.yang@example.org"', '{"count": 3'])
def test_whitespace_between_members_comes_one_byte_at_a_time(chat, vocab, prefix):
    """Run 19 wrote ``"name"`` and then whitespace until its token limit: no parser reads that."""
    allowed = _allowed_texts(chat, vocab, CopyGuide(vocab, MESSAGES, TOOLS), prefix)
    spaces = [t for t in allowed if t and not t.strip(" \t\r\n")]
    assert spaces and all(len(t.encode()) == 1 for t in spaces), spaces
    assert not [t for t in _allowed_texts(chat, vocab, CopyGuide(vocab, MESSAGES, TOOLS), prefix + " ")
                if t[:1] in (" ", "\n", "\t", "\r")]


def test_keys_are_the_tools_unused_parameters_and_members_end_when_none_is_left(chat, vocab):
    texts = _allowed_texts(chat, vocab, CopyGuide(vocab, MESSAGES, TOOLS), '{"')
    keys = ("contact", "summary", "priority", "count")
    assert texts and all(any(k.startswith(t.split('"')[0]) for k in keys) for t in texts), texts
    texts = _allowed_texts(chat, vocab, CopyGuide(vocab, MESSAGES, TOOLS), '{"contact": "liu.yang@example.org", "')
    assert texts and not any("contact".startswith(t.split('"')[0]) and t.split('"')[0] for t in texts
                             if not any(k.startswith(t.split('"')[0]) for k in keys[1:])), texts
    full = '{"contact": "x", "summary": "y", "priority": "low", "count": 3'
    texts = _allowed_texts(chat, vocab, CopyGuide(vocab, MESSAGES, TOOLS), full)
    assert "}" in texts and not any("," in t for t in texts), texts
    texts = _allowed_texts(chat, vocab, CopyGuide(vocab, MESSAGES, TOOLS), '{"contact": ')
    assert texts and all(t.strip() == "" or t.lstrip().startswith('"') for t in texts), texts  # a string, nothing else


def test_greedy_arguments_over_random_logits_are_valid_json_of_quotes(chat, vocab):
    tools = [{"type": "function", "function": {"name": "create_ticket", "parameters": {"type": "object", "properties": {
        "contact": {"type": "string"}, "summary": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}}}]
    said = quotable(MESSAGES).decode()
    for seed in range(15):
        guide, gen = CopyGuide(vocab, MESSAGES, tools), torch.Generator().manual_seed(seed)
        out = chat.encode(_head("create_ticket", "{"))
        start = len(out)
        for _ in range(80):
            logits = guide.mask(torch.randn(len(vocab.token_bytes), generator=gen), out)
            out.append(int(torch.argmax(logits)))
            if not guide.scanner.stack:
                break
        # The object, and the one unguided token after it (the guide sees a token when the next step begins).
        text = "{" + b"".join(vocab.token_bytes[i] for i in out[start:]).decode("utf-8", "replace")
        args, _end = json.JSONDecoder().raw_decode(text)
        assert set(args) <= {"contact", "summary"} and all(v and _whole_quote(v, said) for v in args.values()), text


def test_the_server_guides_chat_requests_with_tools_on_a_checkpoint_that_opts_in(build_ckpt):
    import httpx

    from assistant.engine.engine import LLMEngine
    from assistant.engine.server import create_server
    from tests.server import serve

    class Recording(LLMEngine):
        def stream(self, prompt_ids, params=None):
            self.seen.append(params)
            return super().stream(prompt_ids, params)

    eng = Recording(build_ckpt("v3_qlora"), max_batch=2)
    eng.seen = []
    body = {"model": "m", "messages": [{"role": "user", "content": "hi liu.yang@example.org"}], "max_tokens": 2,
            "temperature": 0}
    try:
        with serve(create_server(eng)) as base, httpx.Client(base_url=base, timeout=60) as http:
            malformed = [{"type": "function", "function": {"name": "a", "parameters": {"properties": ["x"]}}}]
            for opted_in, tools in ((False, TOOLS), (True, TOOLS), (True, None), (True, malformed)):
                eng.config.raw["lingxi_copy_arguments"] = opted_in
                r = http.post("/v1/chat/completions", json={**body, **({"tools": tools} if tools else {})})
                assert r.status_code == 200, r.text
    finally:
        eng.close()
    unflagged, guided, no_tools, odd = (p.guide for p in eng.seen)
    assert odd.free_text == {"a": frozenset()}  # served, and nothing of it guided
    assert unflagged is None and no_tools is None
    assert isinstance(guided, CopyGuide) and b"liu.yang@example.org" in guided.context
    assert guided.free_text == {"create_ticket": frozenset({"contact", "summary"})}


ID_TOOLS = [{"type": "function", "function": {"name": "update_event", "parameters": {"type": "object", "properties": {
    "event_id": {"type": "string"}, "title": {"type": "string"}}, "required": ["event_id"]}}}]
PASTED = "0f8e2d1c-4b5a-4c3d-9e8f-7a6b5c4d3e2f"
LISTED = [
    {"role": "user", "content": f"把季度复盘改名为年度复盘，另外 {PASTED} 那个也看看"},
    {"role": "tool", "content": json.dumps({"ok": True, "events": [
        {"title": "季度复盘", "id": "9f2c41ab77d0", "starts_at": "2027-01-04T09:00:00+08:00"},
        {"title": "周会", "id": "c0ffee1234ab"}], "warning": "overlaps",
        "overlaps": [{"title": "午餐", "id": "aa11bb22cc33"}], "ticket_id": 42}, ensure_ascii=False)},
    {"role": "tool", "content": "plain text, id 77"},
]


def test_id_values_are_the_ids_tool_results_give_and_uuids_the_user_pasted():
    ids = id_values(LISTED).split(b"\0")
    assert ids[0] == ids[-1] == b""  # each id between NULs
    assert set(ids[1:-1]) == {b"9f2c41ab77d0", b"c0ffee1234ab", b"aa11bb22cc33", PASTED.encode()}
    assert id_values(MESSAGES[:2]) == b""  # no tool result, no UUID: nothing to restrict to


def test_an_id_argument_is_a_whole_id_from_the_conversation_whatever_the_logits(chat, vocab):
    ids = {"9f2c41ab77d0", "c0ffee1234ab", "aa11bb22cc33", PASTED}
    got = [_greedy_value(chat, vocab, CopyGuide(vocab, LISTED, ID_TOOLS), '{"event_id": "', s, name="update_event")
           for s in range(20)]
    assert set(got) <= ids and len(set(got)) > 1, got  # whole ids only, and the logits still choose which
    started = _greedy_value(chat, vocab, CopyGuide(vocab, LISTED, ID_TOOLS), '{"event_id": "c0f', 0, name="update_event")
    assert "c0f" + started == "c0ffee1234ab"
    # Another free-text argument still quotes any text; without ids an id argument does too.
    said = quotable(LISTED).decode()
    title = _greedy_value(chat, vocab, CopyGuide(vocab, LISTED, ID_TOOLS), '{"event_id": "c0ffee1234ab", "title": "', 1,
                          name="update_event")
    assert title and _whole_quote(title, said) and title not in ids
    plain = [_greedy_value(chat, vocab, CopyGuide(vocab, MESSAGES[:2], ID_TOOLS), '{"event_id": "', s, name="update_event")
             for s in range(5)]
    assert all(v and _whole_quote(v, quotable(MESSAGES[:2]).decode()) for v in plain), plain


def test_the_object_closes_only_once_the_required_parameters_have_values(chat, vocab):
    def closes(prefix):
        return "}" in [t.strip() for t in _allowed_texts(chat, vocab, CopyGuide(vocab, LISTED, ID_TOOLS), prefix, "update_event")]

    assert not closes("{") and not closes('{"title": "周会"')
    assert closes('{"event_id": "c0ffee1234ab"') and closes('{"title": "周会", "event_id": "c0ffee1234ab"')
    assert "}" in [t.strip() for t in _allowed_texts(chat, vocab, CopyGuide(vocab, MESSAGES, TOOLS), "{")]  # none required
    # A malformed "required" (not a list, or naming an undeclared parameter) never keeps the object open.
    for need in ("event_id", ["nowhere"], None):
        odd = [{"type": "function", "function": {"name": "update_event", "parameters": {
            "properties": ID_TOOLS[0]["function"]["parameters"]["properties"], "required": need}}}]
        texts = _allowed_texts(chat, vocab, CopyGuide(vocab, LISTED, odd), "{", "update_event")
        assert "}" in [t.strip() for t in texts], need


def test_after_the_object_only_its_fence_and_the_calls_end_may_follow(chat, vocab):
    # A small model went on writing after "}" ('{"query": "在"}上门有优惠吗"}'), which no parser reads,
    # and run 26 wrote a second fence ('"k": 19 }\n\n ```'): the fence is written once, then the call ends.
    for seed in range(10):
        guide, gen = CopyGuide(vocab, MESSAGES, TOOLS), torch.Generator().manual_seed(seed)
        out = chat.encode(_head("create_ticket", '{"contact": "liu.yang@example.org"}'))
        start, ended = len(out), False
        for _ in range(12):
            logits = torch.randn(len(vocab.token_bytes), generator=gen)
            logits[vocab.call_end] = -50.0  # the model would rather write anything else
            token = int(torch.argmax(guide.mask(logits, out)))
            out.append(token)
            if token == vocab.call_end:
                ended = True
                break
            assert set(vocab.token_bytes[token].decode("utf-8", "replace")) <= set(" \t\r\n`"), vocab.token_bytes[token]
        tail = b"".join(vocab.token_bytes[i] for i in out[start:-1]).decode("utf-8", "replace")
        assert ended and tail == "\n```", tail
    logits = torch.zeros(len(vocab.token_bytes))
    logits[vocab.call_end] = 5.0
    out = chat.encode(_head("create_ticket", '{"contact": "liu.yang@example.org"}\n```'))
    assert int(torch.argmax(CopyGuide(vocab, MESSAGES, TOOLS).mask(logits, out))) == vocab.call_end
    early = chat.encode(_head("create_ticket", '{"contact": "liu.yang@example.org"}\n'))
    assert int(torch.argmax(CopyGuide(vocab, MESSAGES, TOOLS).mask(logits, early))) != vocab.call_end


def test_a_calls_name_is_an_offered_tools(chat, vocab):
    # A small model named a call '服，_base'; the name, its fence and the object's brace are the offered tools' own.
    tools = [*TOOLS, {"type": "function", "function": {"name": "current_time", "parameters": {"type": "object", "properties": {}}}}]
    full = render_tool_calls([{"function": {"name": "x", "arguments": "{}"}}])
    before_name = full[: full.index("x\n")]
    heads = {f"{t['function']['name']}\n```json\n{{" for t in tools}
    for seed in range(12):
        guide, gen = CopyGuide(vocab, MESSAGES, tools), torch.Generator().manual_seed(seed)
        out = chat.encode(before_name)
        start = len(out)
        for _ in range(30):
            out.append(int(torch.argmax(guide.mask(torch.randn(len(vocab.token_bytes), generator=gen), out))))
            if guide.scanner.mode == "json":
                break
        text = b"".join(vocab.token_bytes[i] for i in out[start:]).decode("utf-8", "replace")
        assert text[: text.index("{") + 1] in heads, text
    # The model's own choice among the names stands.
    logits = torch.zeros(len(vocab.token_bytes))
    for i in chat.encode("current_time\n```json\n{"):
        logits[i] = 5.0
    guide, out = CopyGuide(vocab, MESSAGES, tools), chat.encode(before_name)
    for _ in range(30):
        out.append(int(torch.argmax(guide.mask(logits.clone(), out))))
        if guide.scanner.mode == "json":
            break
    assert guide.scanner.name == "current_time"


def test_value_kinds_of_schemas():
    assert [value_kind(s) for s in ({"type": "string"}, {"type": "integer"}, {"type": ["number", "null"]},
                                     {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
                                     {"anyOf": [{"enum": ["late", "sent"], "type": "string"}, {"type": "null"}]},
                                     {"type": "array", "items": {"enum": ["a"]}}, {"enum": [1, 2]}, "odd",
                                     {"anyOf": [{"type": "integer"}, {"type": "boolean"}]})] == \
        ["text", "integer", "number", "boolean", ("late", "sent"), None, None, None, None]
    assert typed_arguments(TOOLS) == {"create_ticket": {"priority": b"\0low\0high\0", "count": "integer"}}


TYPED = [{"type": "function", "function": {"name": "list_things", "parameters": {"type": "object", "properties": {
    "status": {"anyOf": [{"enum": ["late", "sent"], "type": "string"}, {"type": "null"}]},
    "k": {"default": 4, "type": "integer"}, "all_day": {"type": "boolean"}, "ratio": {"type": "number"}}}}}]


def test_typed_arguments_are_json_of_their_type_whatever_the_logits(chat, vocab):
    """Greedy over random logits: an enum is one of its values, an integer an integer, a boolean true or
    false, a number a number (the 10 M model wrote ``"k": ["多久？"``, which no parser reads)."""
    seen, closed = set(), 0
    for seed in range(120):
        guide, gen = CopyGuide(vocab, MESSAGES, TYPED), torch.Generator().manual_seed(seed)
        out = chat.encode(_head("list_things", "{"))
        start = len(out)
        for _ in range(200):  # random logits favour the many whitespace tokens between members
            logits = guide.mask(torch.randn(len(vocab.token_bytes), generator=gen), out)
            out.append(int(torch.argmax(logits)))
            if not guide.scanner.stack:
                break
        text = "{" + b"".join(vocab.token_bytes[i] for i in out[start:]).decode("utf-8", "replace")
        args, _end = json.JSONDecoder().raw_decode(text)  # closed: raw_decode reads a whole object
        assert args.get("status", "late") in ("late", "sent"), text
        assert type(args.get("k", 0)) is int and type(args.get("all_day", True)) is bool, text
        assert type(args.get("ratio", 0.5)) in (int, float), text
        seen, closed = seen | set(args), closed + 1
    assert seen == {"status", "k", "all_day", "ratio"} and closed == 120


@pytest.mark.parametrize("prefix, ok, refused", [
    ('{"k": ', ["1", "-"], ['"', "[", "t", "}", " "]),  # one space at a time
    ('{"k": 1', ["2", ",", "}"], ["a", ".", '"']),
    ('{"k": -', ["3"], [",", "}", "-"]),
    ('{"all_day": t', ["r"], ["a", ",", "}"]),
    ('{"all_day": true', [",", "}"], ["e", "1"]),
    ('{"status": "la', ["t"], ['"', "s"]),
])
def test_a_typed_value_continues_only_as_its_type_allows(chat, vocab, prefix, ok, refused):
    guide = CopyGuide(vocab, MESSAGES, TYPED)
    guide.mask(torch.zeros(len(vocab.token_bytes)), chat.encode(_head("list_things", prefix)))
    assert all(guide.scanner.clone().scan(t.encode(), guide) for t in ok)
    assert not any(guide.scanner.clone().scan(t.encode(), guide) for t in refused)


def test_warm_builds_the_guides_tables_in_the_background_only_when_the_checkpoint_guides(vocab):
    class Engine:
        def __init__(self, opted_in: bool):
            self.config, self.built = SimpleNamespace(raw={"lingxi_copy_arguments": opted_in}), 0

        @property
        def guide_vocab(self):
            self.built += 1
            return vocab

    quotes._segmenter.cache_clear()
    assert warm(Engine(False)) is None and quotes._segmenter.cache_info().currsize == 0
    engine = Engine(True)
    thread = warm(engine)
    thread.join(timeout=60)
    assert not thread.is_alive() and engine.built == 1 and quotes._segmenter.cache_info().currsize == 1
