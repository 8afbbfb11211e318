"""Compositional training phrasings: recombined templates keep their slots, the held-out split is
untouched, and the question banks stay clear of the held-out knowledge-base topics."""

import json
import random
from string import Formatter

from assistant.engine.train import data, data_compose


def _slots(template):
    return [name for _, name, _, _ in Formatter().parse(template) if name is not None]


def test_recombined_templates_keep_one_slot_order_and_take_pieces_from_the_pool():
    rng = random.Random(0)
    templates = ["Remind me to {text} {when}", "Please remind me {when} to {text}", "Ping me {when} to {text}",
                 "{when} remind me to {text}", "reminder {{urgent}}: {text}, {when}"]
    orders = {tuple(_slots(t)) for t in templates}
    pieces = {lit.lower() for t in templates for lit in data_compose._parse(t)[0]}  # English is sometimes lower-cased
    seen = set()
    for _ in range(300):
        out = data_compose.recombine(templates, "en", rng, filler=0.0)
        assert tuple(_slots(out)) in orders
        lits = data_compose._parse(out)[0]
        assert all(lit.lower() in pieces for lit in lits), out
        seen.add(out)
        out.format(text="x", when="y")  # still a valid template, braces escaped
    assert len(seen) > len(templates)  # new combinations, not just the originals


def test_fillers_sit_beside_the_slots_and_english_words_stay_apart():
    rng = random.Random(1)
    for _ in range(300):
        out = data_compose.recombine(["Cancel {title} now", "Drop {title}"], "en", rng, filler=1.0)
        text = out.format(title="TITLE")
        assert " TITLE" in text or text.startswith("TITLE"), text
        assert "TITLE " in text or "TITLE," in text or text.endswith("TITLE"), text
        assert "  " not in text.strip(), text


def test_compose_changes_train_phrasings_but_not_heldout():
    as_dicts = lambda exs: [e.to_dict() for e in exs]  # noqa: E731
    assert as_dicts(data.generate("heldout", 60, 0, compose=1.0)) == as_dicts(data.generate("heldout", 60, 0))
    assert as_dicts(data.generate("train", 60, 0, compose=0.0)) == as_dicts(data.generate("train", 60, 0))
    plain = {m["content"] for e in data.generate("train", 800, 3) for m in e.messages if m["role"] == "user"}
    composed = [m["content"] for e in data.generate("train", 800, 3, compose=1.0) for m in e.messages if m["role"] == "user"]
    assert sum(c not in plain for c in composed) > 0.3 * len(composed)


def test_questions_search_the_knowledge_base_and_avoid_heldout_topics():
    searches = [json.loads(c["function"]["arguments"])["query"] for e in data.generate("train", 1500, 4, compose=1.0)
                for m in e.messages if m["role"] == "assistant" for c in m.get("tool_calls") or []
                if c["function"]["name"] == "search_knowledge_base"]
    for lang in data.LANGS:
        heldout = data.pool(lang, "KB", None, "heldout")
        questions = {q for t in heldout for q in t[1]}
        assert not questions & set(searches)
        topic_words = {"zh": ("保修", "换货", "换"), "en": ("warrant", "exchang", "swap")}[lang]
        answers = [x for pair in data_compose.ANSWERED[lang] for x in pair]
        for bank in (data_compose.TOPICS[lang], data_compose.FRAMES[lang], answers):
            assert not [x for x in bank if any(w in x.lower() for w in topic_words)], lang
    made = {data_compose.question(lang, random.Random(i)) for lang in data.LANGS for i in range(200)}
    assert len(made & set(searches)) > 20  # the composed questions are what the calls search for


def test_grounded_answers_about_random_topics_cite_the_passage_that_names_the_topic():
    exs = [e for e in data.generate("train", 1500, 6, answered=1.0) if e.kind == "grounded"]
    random_topic = 0
    for ex in exs:
        question = json.loads(ex.messages[-3]["tool_calls"][0]["function"]["arguments"])["query"]
        answer, ref = ex.messages[-1]["content"].rsplit(" [", 1)
        passages = json.loads(ex.messages[-2]["content"])["passages"]
        assert passages[int(ref.rstrip("]")) - 1]["text"].endswith(answer)
        topics = [t for t in data_compose.TOPICS[ex.lang] if t in question]
        if topics:
            random_topic += 1
            topic = max(topics, key=len)
            assert topic in answer or topic[0].upper() + topic[1:] in answer
            assert sum(topic.lower() in p["text"].lower() for p in passages) == 1, passages  # only the answer names it
    assert random_topic > 0.3 * len(exs)
