"""The curriculum: conversation batches, copy drills, the drill phase and the schedule."""

from __future__ import annotations

import itertools
import random

from assistant.engine.train import curriculum as cur
from assistant.engine.train.loop import TrainConfig


def test_batches_respect_the_token_budget_and_keep_every_example():
    rng = random.Random(0)
    data = [cur.Encoded([1] * rng.randrange(5, 300), [True]) for _ in range(500)]
    out = cur.batches(data, 1024, random.Random(1))
    assert sorted(id(e) for b in out for e in b) == sorted(id(e) for e in data)
    assert all(len(b) * max(len(e.ids) for e in b) <= 1024 or len(b) == 1 for b in out)


def test_copy_drills_repeat_a_random_span_and_train_on_the_predictable_part():
    pool = [7] * 90 + list(range(10, 20))  # drills draw tokens as often as the pool has them
    drills = cur.copy_drills(200, pool, bos=0, rng=random.Random(0), lengths=(4, 9))
    assert len(drills) == 200 and len({tuple(d.ids) for d in drills}) > 50
    for d in drills:
        span = (len(d.ids) - 1) // 2
        assert 4 <= span <= 9 and d.ids[0] == 0 and d.ids[1 : 1 + span] == d.ids[1 + span :]
        assert set(d.ids[1:]) <= set(pool)
        # Targets: the repeat after its first token (the first is a random pick nothing predicts).
        assert d.targets == [False] * (span + 2) + [True] * (span - 1)
    drawn = [i for d in drills for i in d.ids[1:]]
    assert 0.8 < drawn.count(7) / len(drawn) < 0.97


def test_distinct_drills_never_repeat_a_token_within_a_span_but_still_follow_the_pool():
    # A span with a token twice makes "copy what followed it last time" ambiguous; measured on the
    # default shape, short distinct spans left the plateau within ~600 steps where long spans drawn
    # with replacement had not after 2,500.
    pool = [7] * 90 + list(range(10, 40))
    drills = cur.copy_drills(300, pool, bos=0, rng=random.Random(0), lengths=(3, 12), distinct=True)
    for d in drills:
        size = (len(d.ids) - 1) // 2
        span = d.ids[1 : 1 + size]
        assert 3 <= size <= 12 and span == d.ids[1 + size :] and len(set(span)) == size
        assert set(span) <= set(pool)
    # The frequent token still opens most spans: draws follow the pool, only repeats are refused.
    assert sum(d.ids[1] == 7 for d in drills) / len(drills) > 0.6
    same = cur.copy_drills(50, pool, bos=0, rng=random.Random(3), lengths=(4, 9))
    assert same == cur.copy_drills(50, pool, bos=0, rng=random.Random(3), lengths=(4, 9), distinct=False)
    assert any(len(set(d.ids[1:])) < (len(d.ids) - 1) // 2 for d in same)  # with replacement, repeats occur


def test_the_schedule_starts_with_drills_alone_then_mixes_them_with_the_conversations():
    rng = random.Random(0)
    talks = [cur.Encoded([1] * rng.randrange(50, 200), [True]) for _ in range(300)]
    drills = cur.copy_drills(300, list(range(3, 40)), bos=0, rng=rng)
    cfg = TrainConfig(batch_tokens=1024, drill_steps=12, drill_batch=32)  # more steps than a pass of drills
    stream = cur.schedule(talks, drills, cfg, random.Random(1))
    first = [next(stream) for _ in range(12)]
    assert all(e in drills for b in first for e in b)
    assert all(len(b) == 32 for b in first[:9]) and len(first[9]) == 300 - 9 * 32
    # Drill batches mix lengths, or a fixed look-back would solve them without copying.
    assert all(len({len(e.ids) for e in b}) > 5 for b in first[:9])
    later = [next(stream) for _ in range(200)]
    assert any(e in talks for b in later for e in b) and any(e in drills for b in later for e in b)
    assert not any(any(e in talks for e in b) and any(e in drills for e in b) for b in later)


def test_the_drill_phase_ends_once_copying_forms_or_at_its_cap():
    rng = random.Random(0)
    talks = [cur.Encoded([1] * 60, [True]) for _ in range(40)]
    drills = cur.copy_drills(320, list(range(3, 40)), bos=0, rng=rng)
    cfg = TrainConfig(batch_tokens=600, drill_batch=32)
    phase = cur.DrillPhase(limit=100, target=1.5, window=5)
    stream = cur.schedule(talks, drills, cfg, random.Random(1), phase)
    for loss in [5.0] * 30 + [1.0] * 5:  # a plateau, then copying
        batch = next(stream)
        assert phase.active and all(e in drills for e in batch)
        phase.record(loss)
    assert all(e in talks or e in drills for e in next(stream)) and not phase.active
    assert phase.steps == 35 and phase.formed and phase.recent_loss == 1.0
    phase.record(9.0)  # after the phase, losses are not the drills'
    assert phase.recent_loss == 1.0
    capped = cur.DrillPhase(limit=12, target=1.5, window=5)
    stream = cur.schedule(talks, drills, cfg, random.Random(1), capped)
    for _ in range(12):
        next(stream)
        capped.record(5.0)
    next(stream)
    assert capped.steps == 12 and not capped.formed and not capped.active
    fixed = cur.DrillPhase(limit=8, target=None, window=2)  # no target: always the whole cap
    stream = cur.schedule(talks, drills, cfg, random.Random(1), fixed)
    for _ in range(8):
        next(stream)
        fixed.record(0.1)
    next(stream)
    assert fixed.steps == 8


def test_no_drills_means_no_drill_phase():
    talks = [cur.Encoded([1] * 60, [True]) for _ in range(40)]
    stream = cur.schedule(talks, [], TrainConfig(batch_tokens=600, drill_steps=50), random.Random(0))
    assert all(e in talks for _ in range(10) for e in next(stream))


def test_widened_pool_adds_every_vocabulary_id_at_the_asked_share():
    pool = [5, 5, 6, 7] * 3000
    vocab = range(3, 1003)
    wide = cur.widened(pool, vocab, 0.3)
    assert wide[: len(pool)] == pool and set(wide) == set(vocab)
    added = len(wide) - len(pool)
    assert abs(added / len(wide) - 0.3) < 0.05
    assert cur.widened(pool, vocab, 0.0) is pool


def test_schedule_uses_the_later_drills_after_the_phase():
    rng = random.Random(0)
    cfg = TrainConfig(drill_batch=4, batch_tokens=64, drill_steps=3, drill_target=None)
    early = cur.copy_drills(40, [10, 11, 12, 13, 14], 0, rng, (3, 4), True)
    late = cur.copy_drills(40, [20, 21, 22, 23, 24], 0, rng, (3, 4), True)
    talk = [cur.Encoded([0, 1, 2, 3], [False, False, True, True]) for _ in range(8)]
    out = list(itertools.islice(cur.schedule(talk, early, cfg, rng, later=late), 40))
    tokens = lambda b: {i for e in b for i in e.ids}  # noqa: E731
    assert all(tokens(b) <= {0, 10, 11, 12, 13, 14} for b in out[:3])
    rest = [tokens(b) for b in out[3:]]
    assert not any(t & {10, 11, 12, 13, 14} for t in rest) and any(t & {20, 21, 22, 23, 24} for t in rest)
