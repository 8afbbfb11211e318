"""Made-up fill-ins: new words in the usual shapes, drawn from the seed, never from the held-out pools."""

import random
import re

from assistant.engine.train import data, data_random


def test_common_hanzi_are_the_3755_level_one_characters():
    chars = data_random.common_hanzi()
    assert len(chars) == len(set(chars)) == 3755
    assert chars[0] == "啊" and all("\u4e00" <= c <= "\u9fa5" for c in chars)
    assert {"的", "王", "总", "电", "话"} <= set(chars)


def test_pseudo_words_are_new_pronounceable_words():
    rng = random.Random(0)
    words = [data_random.pseudo_word(rng) for _ in range(2000)]
    assert all(w.isalpha() and w.isascii() for w in words)
    assert len(set(w.lower() for w in words)) > 1500
    capitalised = sum(w[0].isupper() for w in words) / len(words)
    assert 0.08 < capitalised < 0.25


def test_phrases_mix_bank_words_and_made_up_ones():
    rng = random.Random(1)
    bank = ("meeting", "report", "dentist")
    words = [w for _ in range(500) for w in data_random.phrase("en", rng, bank).split(" ")]
    made_up = sum(w not in bank for w in words) / len(words)
    assert 0.3 < made_up < 0.5
    zh = [data_random.phrase("zh", rng, ("开", "会")) for _ in range(500)]
    assert all(2 <= len(p) <= 6 for p in zh)
    assert 0.3 < sum(c not in "开会" for p in zh for c in p) / sum(map(len, zh)) < 0.5
    assert [data_random.phrase("en", random.Random(5), bank) for _ in range(3)] == \
        [data_random.phrase("en", random.Random(5), bank) for _ in range(3)]


def test_contacts_are_emails_or_phone_numbers_and_not_from_the_pools():
    rng = random.Random(2)
    known = {c for lang in data.LANGS for split in ("train", "heldout") for c in data.pool(lang, "V", "contact", split)}
    email = re.compile(r"^[a-z]+([._][a-z]+|\d{1,4})?@[a-z0-9.]+\.[a-z.]+$")
    phone = re.compile(r"^(\+\d{1,2} [\d -]+|1\d{10}|1\d{2}-\d{4}-\d{4})$")
    for lang in data.LANGS:
        made = [data_random.contact(lang, rng) for _ in range(400)]
        assert not set(made) & known
        assert all(email.match(c) or phone.match(c) for c in made), [c for c in made if not (email.match(c) or phone.match(c))]
        share = sum("@" in c for c in made) / len(made)
        assert 0.5 < share < 0.7
    assert any(re.fullmatch(r"1\d{10}", data_random.contact("zh", rng)) for _ in range(50))


def test_openers_are_made_up_words_then_punctuation():
    rng = random.Random(3)
    en = [data_random.opener("en", rng) for _ in range(500)]
    zh = [data_random.opener("zh", rng) for _ in range(500)]
    assert all(re.fullmatch(r"(Hey )?[A-Z][a-z]+(, |! |\.\.\. | - )", o) for o in en), en[:5]
    assert all(1 <= len(o) - 1 <= 3 and o[-1] in "，！。~ " and set(o[:-1]) <= set(data_random.common_hanzi()) for o in zh)
    assert len(set(en)) > 400 and len(set(zh)) > 450


def test_chinese_openers_leave_out_the_characters_they_are_told_to():
    rng = random.Random(4)
    avoid = frozenset("提醒删除改日程会议")
    made = "".join(data_random.opener("zh", rng, avoid) for _ in range(2000))
    assert not set(made) & avoid
    assert set("提醒") <= set("".join(data_random.opener("zh", rng) for _ in range(20000)))
