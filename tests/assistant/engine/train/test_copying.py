"""Teacher-forced copying: which positions count, and how hits are counted per language."""

from __future__ import annotations

import torch

from assistant.engine.train import copying
from assistant.engine.train.curriculum import Encoded


def test_copy_positions_are_assistant_tokens_continuing_a_pair_from_the_context():
    # user: 1 5 6 7 9 | assistant: 5 6 8 6 7
    e = Encoded([1, 5, 6, 7, 9, 5, 6, 8, 6, 7], [False] * 5 + [True] * 5)
    # (5, 6) and (6, 7) were said by the user; (9, 5) straddles the turn, (6, 8) and (8, 6) are new.
    assert copying.copy_positions(e) == [6, 9]
    # Pairs the assistant itself wrote earlier are not context to copy from.
    again = Encoded([1, 2, 3, 4, 3, 4], [False, False, True, True, True, True])
    assert copying.copy_positions(again) == []
    assert copying.copy_positions(Encoded([1, 5, 6], [False, False, False])) == []


class ScriptedModel:
    """Logits whose argmax at position t is ``guess[t]``."""

    def __init__(self, guess):
        self.guess, self.embed = guess, torch.zeros(1)

    def new_cache(self, capacity):
        return None

    def forward(self, ids, positions, cache):
        logits = torch.zeros(len(ids), 20)
        logits[torch.arange(len(ids)), torch.tensor(self.guess)] = 1.0
        return logits


def test_copied_hits_compare_the_previous_positions_guess_with_the_token():
    e = Encoded([1, 5, 6, 7, 9, 5, 6, 8, 6, 7], [False] * 5 + [True] * 5)
    right = [0, 0, 0, 0, 0, 6, 0, 0, 7, 0]  # predicts 6 after the 5 at 5, 7 after the 6 at 8
    assert copying.copied_hits(ScriptedModel(right), e) == (2, 2)
    wrong = right[:5] + [8] + right[6:]
    assert copying.copied_hits(ScriptedModel(wrong), e) == (1, 2)
    assert copying.copied_hits(ScriptedModel([0] * 3), Encoded([1, 2, 3], [False, True, True])) == (0, 0)


def test_copy_accuracy_sums_per_language_and_overall():
    e = Encoded([1, 5, 6, 7, 9, 5, 6, 8, 6, 7], [False] * 5 + [True] * 5)
    model = ScriptedModel([0, 0, 0, 0, 0, 6, 0, 0, 0, 0])  # one of the two copies right
    report = copying.copy_accuracy(model, [e, e, e], ["zh", "en", "zh"])
    assert report["zh"] == {"hits": 2, "n": 4, "value": 0.5} and report["en"]["n"] == 2
    assert report["all"] == {"hits": 3, "n": 6, "value": 0.5}
    assert copying.copy_accuracy(model, [], []) == {}
