"""The synthetic assistant data: coverage, verbatim arguments and answers, disjoint splits."""

import json
import random
import re

import jsonschema
import pytest

from assistant.engine import toolview
from assistant.engine.train import data, data_en, data_zh
from tools.registry import PROFILES

N = 2000


@pytest.fixture(scope="module")
def train():
    return data.generate("train", N, seed=1)


@pytest.fixture(scope="module")
def heldout():
    return data.generate("heldout", N, seed=1)


def _calls(ex):
    """(index, call) for every assistant tool call in the conversation."""
    for i, m in enumerate(ex.messages):
        if m["role"] == "assistant":
            for c in m.get("tool_calls") or []:
                yield i, c


def _has_enum(schema):
    return "enum" in json.dumps(schema)


def test_deterministic():
    a = [e.to_dict() for e in data.generate("train", 50, seed=3)]
    assert a == [e.to_dict() for e in data.generate("train", 50, seed=3)]
    assert a != [e.to_dict() for e in data.generate("train", 50, seed=4)]


def test_every_lang_and_kind(train):
    seen = {(e.lang, e.kind) for e in train}
    assert seen == {(lang, kind) for lang in data.LANGS for kind in data.KINDS}


def test_every_tool_is_a_target_in_both_languages(train, heldout):
    for sample in (train, heldout):
        targets = {(e.lang, e.profile, e.messages[-1]["tool_calls"][0]["function"]["name"])
                   for e in sample if e.messages[-1].get("tool_calls")}
        for lang in data.LANGS:
            assert {n for lg, p, n in targets if lg == lang and p == "owner"} == set(PROFILES["owner"])
            assert {n for lg, p, n in targets if lg == lang and p == "customer_service"} == set(PROFILES["customer_service"])


@pytest.mark.parametrize("split,random_fill,compose", [("train", 0.0, 0.0), ("heldout", 0.0, 0.0), ("train", 1.0, 0.0),
                                                      ("train", 0.8, 1.0)])
def test_calls_are_valid_and_copied_from_the_conversation(split, random_fill, compose):
    for ex in data.generate(split, 1000, seed=2, random_fill=random_fill, compose=compose):
        assert ex.messages[0]["role"] == "system" and ex.messages[-1]["role"] == "assistant"
        schemas = {t["function"]["name"]: t["function"]["parameters"] for t in ex.tools}
        for i, call in _calls(ex):
            fn = call["function"]
            assert fn["name"] in schemas, (fn, ex.profile)
            args = json.loads(fn["arguments"])
            jsonschema.validate(args, schemas[fn["name"]])
            earlier = " ".join(m["content"] for m in ex.messages[1:i])
            for key, value in args.items():
                if isinstance(value, str) and not _has_enum(schemas[fn["name"]]["properties"][key]):
                    assert value in earlier, (key, value, ex.messages)
            results = [m for m in ex.messages[i + 1:] if m["role"] == "tool"]
            assert not results or results[0]["tool_call_id"] == call["id"]


def test_lengths(train):
    # Short enough that, with the system prompt and the tool schemas, a conversation fits max_len
    # (1,024 tokens): a listing of four rows in the tools' own shapes is the longest (~900 tokens
    # with the default 6,000-token BPE, measured over 4,000 conversations).
    sizes = [len(json.dumps(e.messages[1:], ensure_ascii=False)) for e in train]
    assert max(sizes) <= 3000 and sum(sizes) / len(sizes) < 900


def test_listings_name_the_row_before_its_id_and_calls_on_a_record_name_it_in_the_users_words(train):
    listings = [json.loads(m["content"]) for e in train for m in e.messages
                if m["role"] == "tool" and ('"events": [{' in m["content"] or '"reminders": [{' in m["content"])]
    picked = [e for e in train if e.kind == "tool_call" and e.messages[-1]["tool_calls"][0]["function"]["name"]
              in ("update_event", "delete_event", "update_reminder", "cancel_reminder")]
    assert listings and picked
    for rows in (d.get("events") or d.get("reminders") for d in listings):
        assert all(list(r)[1] == "id" and list(r)[0] in ("title", "text") for r in rows)
    for e in picked:
        args = json.loads(e.messages[-1]["tool_calls"][0]["function"]["arguments"])
        named = args.get("event") or args.get("reminder")
        assert named and named in e.messages[-2]["content"] and not any(k.endswith("_id") for k in args), e.messages


def test_some_follow_ups_name_no_record_and_ask_in_the_users_language(train):
    asked = [e for e in train if e.kind == "follow_up" and e.messages[-2]["role"] == "tool"
             and "ask_user" in e.messages[-2]["content"] and "find" in e.messages[-2]["content"]]
    assert asked
    for e in asked:
        args = json.loads(e.messages[-3]["tool_calls"][0]["function"]["arguments"])
        name = args.get("event") or args.get("reminder")
        question = json.loads(e.messages[-2]["content"])["ask_user"]
        reply = e.messages[-1]["content"]
        assert name and f"“{name}”" in reply and reply in question
        assert bool(re.search(r"[\u4e00-\u9fff]", reply.replace(name, ""))) == (e.lang == "zh"), reply


def test_grounded_answers_are_verbatim_and_unanswerable_ones_decline(train, heldout):
    for ex in train + heldout + data.generate("train", 600, seed=1, random_fill=0.8, compose=1.0, answered=1.0):
        target = ex.messages[-1].get("content") or ""
        declines = any(m in target for m in data.UNKNOWN_MARKERS[ex.lang])
        if ex.kind == "grounded":
            bare = re.sub(r" ?\[\d+\]", "", target)
            assert re.search(r"\[\d+\]$", target) and any(bare in p for p in ex.passages), ex.messages
            assert not declines
        elif ex.kind == "unanswerable":
            assert declines, target
            assert not any(target in p for p in ex.passages)


def test_splits_do_not_share_user_text_or_vocabulary(train, heldout):
    seen = {m["content"] for e in train for m in e.messages if m["role"] == "user"}
    held = {m["content"] for e in heldout for m in e.messages if m["role"] == "user"}
    assert not held & seen, sorted(held & seen)[:5]
    for mod in (data_en, data_zh):
        pools = [*mod.T.values(), *mod.V.values(), mod.RECUR, mod.RANGE_DAYS, mod.ALLDAY, list(mod.CHANNELS),
                 list(mod.STATUS), [t[0] for t in mod.KB]]
        for pool in pools:
            a, b = data.split_pool(pool, "train"), data.split_pool(pool, "heldout")
            assert a and b and not set(map(str, a)) & set(map(str, b)), pool
        one_offs = [set(data._times(mod.__name__[-2:], s)[0]) for s in ("train", "heldout")]
        assert one_offs[0] and one_offs[1] and not one_offs[0] & one_offs[1]


def test_jsonl_round_trip(tmp_path):
    examples = data.generate("heldout", 30, seed=5)
    path = tmp_path / "d.jsonl"
    data.write_jsonl(examples, path)
    assert [e.to_dict() for e in data.read_jsonl(path)] == [e.to_dict() for e in examples]


# Re-pinned once, deliberately, after run 28: two held-out phrasings of the no-argument ``list_events``
# named a week ("Any events this week?", 我这周忙不忙), so a call that passed the week as ``start`` was
# scored wrong; they became "Do I have any events?" and 我忙不忙 (the training split is unchanged).
HELDOUT_300_0_SHA256 = "278fddbdbc5108cdfceee089e4fc28b8fdc26e8b1391192a4e1d823a8f66da30"


def test_heldout_unchanged_by_train_only_extras():
    import hashlib
    blob = json.dumps([e.to_dict() for e in data.generate("heldout", 300, 0)], sort_keys=True, ensure_ascii=False)
    assert hashlib.sha256(blob.encode()).hexdigest() == HELDOUT_300_0_SHA256


def test_train_extras_are_disjoint_from_heldout_pools():
    for lang in data.LANGS:
        for table in ("T", "V"):
            for key in getattr(data.EXTRA[lang], table):
                held = set(map(str, data.pool(lang, table, key, "heldout")))
                assert not held & set(map(str, data.pool(lang, table, key, "train"))), (lang, key)
        held_days = data.split_pool(data.VOCAB[lang].RANGE_DAYS, "heldout")
        assert data.EXTRA[lang].RANGE_DAYS and not set(held_days) & set(data.EXTRA[lang].RANGE_DAYS)
        held_kb = data.pool(lang, "KB", None, "heldout")
        names = {t[0] for t in held_kb}
        words = {q for t in held_kb for q in t[1]}
        assert not names & {t[0] for t in data.EXTRA[lang].KB}
        assert not words & {q for t in data.EXTRA[lang].KB for q in t[1]}


def test_train_extras_add_only_new_entries():
    """``pool`` drops an extra that repeats an original entry, so one would be dead text, and one
    repeating a held-out entry would read as a leak of the held-out split into training."""
    for lang in data.LANGS:
        for table in ("T", "V"):
            base = getattr(data.VOCAB[lang], table)
            for key, extra in getattr(data.EXTRA[lang], table).items():
                assert not set(map(str, extra)) & set(map(str, base.get(key, []))), (lang, table, key)


def test_random_fill_makes_copied_values_unmemorisable_and_leaves_heldout_alone():
    known = {v for lang in data.LANGS for key in data.COPIED for split in ("train", "heldout")
             for v in data.pool(lang, "V", key, split)}
    copied = [json.loads(call["function"]["arguments"]).get(key) for ex in data.generate("train", 400, 1, random_fill=1.0)
              for _, call in _calls(ex) for key in data.COPIED if key in json.loads(call["function"]["arguments"])]
    copied = [c for c in copied if isinstance(c, str)]
    assert len(copied) > 50 and sum(c not in known for c in copied) > 0.8 * len(copied)
    as_dicts = lambda exs: [e.to_dict() for e in exs]  # noqa: E731
    assert as_dicts(data.generate("heldout", 50, 0, random_fill=1.0)) == as_dicts(data.generate("heldout", 50, 0))
    assert as_dicts(data.generate("train", 50, 0, random_fill=0.0)) == as_dicts(data.generate("train", 50, 0))


def _optional_share(examples) -> float:
    """Of the calls to tools with a bare shape, the share that pass more than the bare arguments."""
    bare = {"create_event": 2, "create_reminder": 2, "list_events": 0, "list_reminders": 0}
    calls = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for ex in examples for _, c in _calls(ex)]
    return sum(len(a) > bare[t] for t, a in calls if t in bare) / sum(t in bare for t, _ in calls)


def test_training_passes_optional_arguments_more_often_and_names_more_days():
    draws = {split: [data._Gen(random.Random(s), split, "en").shape() for s in range(2000)] for split in ("train", "heldout")}
    assert min(draws["train"]) >= data.RICHER > 0 and sum(d < data.RICHER for d in draws["heldout"]) > 100
    train, held = data.generate("train", 3000, 2), data.generate("heldout", 3000, 2)
    rich, plain = _optional_share(train), _optional_share(held)
    assert rich > plain, (rich, plain)
    starts = {json.loads(c["function"]["arguments"]).get("start") for ex in train for _, c in _calls(ex)
              if c["function"]["name"] == "list_events"}
    assert {"Tuesday", "周二"} <= starts


def test_training_messages_sometimes_open_with_made_up_words_that_no_call_copies():
    known = {p.strip(" ,，") for lang in data.LANGS for split in ("train", "heldout") for p in data.pool(lang, "T", "prefix", split)}
    opened = 0
    for ex in data.generate("train", 600, 3, random_fill=1.0):
        first = next(m["content"] for m in ex.messages if m["role"] == "user")
        head = re.match(r"(?:Hey )?([A-Z][a-z]+)(?:, |! |\.\.\. | - )|([\u4e00-\u9fa5]{1,3})[，！。~ ]", first)
        if not head or (head.group(1) or head.group(2)) in known or ex.kind not in ("tool_call", "follow_up"):
            continue
        word = head.group(1) or head.group(2)
        args = [json.loads(c["function"]["arguments"]) for _, c in _calls(ex)]
        if any(word in str(v) for a in args for v in a.values()):
            continue  # the request itself starts with that word (no opener)
        opened += 1
    assert opened > 20


def _leaves(value):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        yield str(value)


def test_what_a_reply_restates_from_a_tool_result_is_in_the_view_the_model_reads(train, heldout):
    # The bundled model reads tool results in toolview's compact view (tokenizer_config.json): a
    # reply that restates a time or a title must find it there, or it is trained to make it up.
    restated = 0
    for ex in train + heldout:
        for i, m in enumerate(ex.messages[:-1]):
            reply = ex.messages[i + 1]
            if m["role"] != "tool" or reply["role"] != "assistant" or not reply.get("content"):
                continue
            shown = toolview.view(m["content"])
            for leaf in _leaves(json.loads(m["content"])):
                if len(leaf) >= 4 and leaf in reply["content"] and leaf not in ex.messages[i - 1].get("content", ""):
                    assert leaf in shown, (leaf, shown)
                    restated += 1
    assert restated > 500


def test_made_up_chinese_openers_use_no_character_of_the_request_templates():
    cues = data.cue_chars("zh")
    assert {"提", "醒", "删"} <= cues and not any(c in cues for c in "{}")
    openers = [data._Gen(random.Random(s), "train", "zh", random_fill=1.0).opener() for s in range(400)]
    made = [o for o in openers if o not in data.pool("zh", "T", "prefix", "train")]
    assert len(made) > 100 and not set("".join(o[:-1] for o in made)) & cues
