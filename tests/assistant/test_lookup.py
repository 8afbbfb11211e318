"""assistant.lookup: which records a name the user gives designates."""

from __future__ import annotations

from assistant.lookup import named, normal


def titles(name, rows):
    return named(name, rows, lambda r: r)


def test_normal_drops_case_spaces_quotes_and_punctuation():
    assert normal(" 「Dentist  Appointment」! ") == "dentistappointment"
    assert normal("给王总回电话。") == "给王总回电话"
    assert normal("ＡＢＣ") == "abc"  # full-width letters, as a Chinese keyboard types them


def test_an_exact_match_wins_over_containing_labels():
    rows = ["开会", "和王总开会", "开会材料"]
    assert titles("开会", rows) == ["开会"]
    assert titles("和王总 开会", rows) == ["和王总开会"]


def test_containment_either_way_when_nothing_matches_exactly():
    rows = ["Dentist appointment", "Coffee with Leo", "理发"]
    assert titles("dentist", rows) == ["Dentist appointment"]  # the name is part of the title
    assert titles("my 理发 slot", rows) == ["理发"]  # the title is part of the name
    assert titles("Coffee", rows) == ["Coffee with Leo"]


def test_no_match_for_blank_single_character_or_unrelated_names():
    rows = ["会", "项目评审"]
    assert titles("", rows) == []
    assert titles("！", rows) == []
    assert titles("评", rows) == []  # one character is too little to go on
    assert titles("开会吧", rows) == []  # "会" is a single character, so it designates nothing
    assert titles("board meeting", rows) == []


def test_several_matches_are_all_returned():
    rows = ["周会", "周会 ", "周会准备"]
    assert titles("周会", rows) == ["周会", "周会 "]
