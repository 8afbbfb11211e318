"""Compositional training phrasings: recombined templates keep their slots, the held-out split is
untouched, and the question banks stay clear of the held-out knowledge-base topics."""

import json
import random
import re
from string import Formatter

from assistant.engine.train import data, data_compose, data_random


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
    # The composed questions are what the calls search for: a frame around a topic of the bank or a made-up one.
    frames = [re.compile("^" + re.escape(f).replace(re.escape("{x}"), "(.+)") + "$", re.I) for lang in data.LANGS
              for f in data_compose.FRAMES[lang]]
    topics = [m.group(1) for q in searches for f in frames if (m := f.match(q))]
    bank = {t.lower() for lang in data.LANGS for t in data_compose.TOPICS[lang]}
    assert len(topics) > 0.3 * len(searches)
    made_up = [t for t in topics if t.lower() not in bank]
    assert 0.1 * len(topics) < len(made_up) < 0.6 * len(topics), made_up[:5]


def test_made_up_topics_are_new_words_and_answered_passages_name_one_topic_each():
    rng = random.Random(3)
    for lang in data.LANGS:
        made = [data_compose.topic(lang, rng, made_up=1.0) for _ in range(300)]
        assert len(set(made)) > 250 and not set(made) & set(data_compose.TOPICS[lang])
        if lang == "zh":
            assert all(2 <= len(t) <= 4 and all(c in data_random.common_hanzi() for c in t) for t in made)
        else:
            assert all(len(w) >= 4 and w.isalpha() for t in made for w in t.split())
        asks = [re.compile("^" + re.escape(q).replace(re.escape("{x}"), "(.+)") + "$") for q, _ in data_compose.ANSWERED[lang]]
        for _ in range(300):
            question, answer, others = data_compose.answered(lang, rng, 2)
            asked = next(m.group(1) for a in asks if (m := a.match(question))).lower()
            assert asked in answer.lower() and not any(asked in o.lower() for o in others), (question, answer, others)


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
