"""The training data, made once: conversations generated, the tokenizer trained on them, every
conversation encoded, the copy drills drawn (``prepare``); and one file that holds all of it
(``save``, ``load``).

Why a file: generating 120,000 conversations takes minutes of one core, and it needs the app's
own packages (the tools' time parser and record shapes use SQLAlchemy, the prompts pydantic). A
lent GPU machine has torch and tokenizers but neither of those, and minutes of device time, so
``engine train --prepare FILE`` makes the data here and ``engine train --data FILE`` trains from it
there. The file also carries the random state the data left behind, so a run from the file draws
the same batches as one that made its data itself.

Does not: train (``loop.train``), or check that the file came from this commit's generator (it
checks the configuration fields the data depends on, ``DATA_FIELDS``).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, models

from ..config import EngineError
from . import tokenizer as ttok
from .curriculum import Encoded, copy_drills, widened

# The TrainConfig fields that decide the data; a run from a file must agree with it on each.
DATA_FIELDS = ("examples", "random_fill", "compose", "answered", "copy_drills", "drill_lengths", "drill_distinct",
               "drill_widen", "vocab_size", "tokenizer_examples", "max_len", "seed")
FORMAT = 1


@dataclass
class Prepared:
    tok: Tokenizer
    kept: list[Encoded]         # the conversations, at most max_len tokens each
    drills: list[Encoded]       # copy drills of the drill phase
    later: list[Encoded]        # drills shuffled in afterwards (``widened``), or ``drills`` itself
    probe: list[Encoded]        # unseen conversations (another seed) for the utilisation report
    generated: int              # conversations generated, the too long ones included
    rng_state: tuple            # ``random.Random(seed)``'s state after drawing the drills
    fields: dict                # DATA_FIELDS of the config that made it
    seconds: float              # how long making it took

    def summary(self) -> str:
        return (f"data: {self.generated} conversations, {len(self.kept)} kept (<= {self.fields['max_len']} tokens), "
                f"{sum(len(e.ids) for e in self.kept)} tokens, {sum(sum(e.targets) for e in self.kept)} trained on; "
                f"vocab {self.tok.get_vocab_size()}; {self.seconds:.0f} s")


def render_tokenizer() -> Tokenizer:
    """An empty tokenizer that knows only the control tokens: enough for the template to render."""
    tok = Tokenizer(models.BPE())
    tok.add_special_tokens(list(ttok.SPECIALS))
    return tok


def encode(chat, example) -> Encoded:
    """Token ids of the whole conversation and which of them are assistant tokens.

    Each assistant message's tokens are those between the conversation rendered up to it (with
    the generation prompt) and rendered through it. Both renders split at a control token, so the
    shorter is a token prefix of the longer."""
    msgs, tools = example.messages, example.tools or None
    ids = chat.encode_chat(msgs, tools, add_generation_prompt=False)
    targets = [False] * len(ids)
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        start = len(chat.encode_chat(msgs[:i], tools, add_generation_prompt=True))
        end = len(chat.encode_chat(msgs[: i + 1], tools, add_generation_prompt=False))
        targets[start:end] = [True] * (end - start)
    return Encoded(ids, targets)


def data_fields(cfg) -> dict:
    d = asdict(cfg)
    return {k: list(d[k]) if isinstance(d[k], tuple) else d[k] for k in DATA_FIELDS}


def prepare(cfg) -> Prepared:
    """Generate, tokenize and encode the training split of ``cfg`` (a ``loop.TrainConfig``)."""
    try:
        from . import data as tdata
    except ImportError as exc:
        raise EngineError(f"making the training data needs the app's packages ({exc}): install requirements.txt, "
                          "or train from a file made where they are (engine train --prepare FILE, then --data FILE)") from exc

    t0 = time.monotonic()
    rng = random.Random(cfg.seed)
    examples = tdata.generate("train", cfg.examples, seed=cfg.seed, random_fill=cfg.random_fill,
                              compose=cfg.compose, answered=cfg.answered)
    render = ttok.chat_tokenizer(render_tokenizer())
    texts = (render.apply_chat_template(e.messages, e.tools or None, add_generation_prompt=False)
             for e in examples[: cfg.tokenizer_examples])
    tok = ttok.train_tokenizer(texts, cfg.vocab_size)
    chat = ttok.chat_tokenizer(tok)
    kept = [e for e in (encode(chat, x) for x in examples) if len(e.ids) <= cfg.max_len]
    drills: list[Encoded] = []
    later = drills
    if cfg.copy_drills:
        # Drill tokens: the BPE's own ids as they occur (0..2 are BOS/EOS/PAD; the markers come after the BPE's ids).
        learned = range(3, tok.get_vocab_size() - len(ttok.MARKERS))
        pool = [i for e in kept[:5000] for i in e.ids if i in learned]
        bos, lengths = tok.token_to_id(ttok.BOS), tuple(cfg.drill_lengths)
        drills = copy_drills(cfg.copy_drills, pool, bos, rng, lengths, cfg.drill_distinct)
        later = copy_drills(cfg.copy_drills, widened(pool, learned, cfg.drill_widen), bos, rng, lengths,
                            cfg.drill_distinct) if cfg.drill_widen else drills
    probe = [e for e in (encode(chat, x) for x in tdata.generate("train", 300, seed=cfg.seed + 7919))
             if len(e.ids) <= cfg.max_len]
    return Prepared(tok, kept, drills, later, probe, len(examples), rng.getstate(), data_fields(cfg),
                    time.monotonic() - t0)


def _pack(items: list[Encoded]) -> dict:
    """Token ids end to end (int16 while the vocabulary fits), each item's length, and its target
    tokens as (start, end) runs: a conversation has a few assistant turns, so a few runs."""
    lengths = [len(e.ids) for e in items]
    flat = [i for e in items for i in e.ids]
    runs, counts = [], []
    for e in items:
        mine = [i for i, (t, prev) in enumerate(zip(e.targets, [False, *e.targets])) if t != prev]
        mine += [len(e.targets)] * (len(mine) % 2)
        runs += mine
        counts.append(len(mine) // 2)
    dtype = torch.int16 if max(flat, default=0) < 2 ** 15 else torch.int32
    return {"ids": torch.tensor(flat, dtype=dtype), "lengths": torch.tensor(lengths, dtype=torch.int32),
            "runs": torch.tensor(runs, dtype=torch.int32), "run_counts": torch.tensor(counts, dtype=torch.int32)}


def _unpack(packed: dict) -> list[Encoded]:
    ids, runs = packed["ids"].tolist(), packed["runs"].tolist()
    out, at, r = [], 0, 0
    for n, k in zip(packed["lengths"].tolist(), packed["run_counts"].tolist()):
        targets = [False] * n
        for start, end in zip(runs[r: r + 2 * k: 2], runs[r + 1: r + 2 * k: 2]):
            targets[start:end] = [True] * (end - start)
        out.append(Encoded(ids[at: at + n], targets))
        at, r = at + n, r + 2 * k
    return out


def save(prep: Prepared, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    same = prep.later is prep.drills
    torch.save({"format": FORMAT, "tokenizer": prep.tok.to_str(), "fields": prep.fields, "generated": prep.generated,
                "seconds": prep.seconds, "rng_state": json.dumps(prep.rng_state),
                "kept": _pack(prep.kept), "drills": _pack(prep.drills), "later": None if same else _pack(prep.later),
                "probe": _pack(prep.probe)}, path)


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


def load(path: Path, cfg) -> Prepared:
    """The data in ``path``; an ``EngineError`` saying which field differs when ``cfg`` would have
    made other data, or why the file cannot be read."""
    try:
        d = torch.load(path, weights_only=True)
        if d.get("format") != FORMAT:
            raise ValueError(f"format {d.get('format')!r}, expected {FORMAT}")
        tok = Tokenizer.from_str(d["tokenizer"])
    except Exception as exc:  # noqa: BLE001 -- a truncated zip, a pickle, another format: all one message
        raise EngineError(f"cannot read prepared training data {path}: {exc}") from exc
    want = data_fields(cfg)
    differ = [f"{k} {d['fields'].get(k)!r} (the config says {v!r})" for k, v in want.items() if d["fields"].get(k) != v]
    if differ:
        raise EngineError(f"{path} was prepared with other data settings: " + "; ".join(differ))
    drills = _unpack(d["drills"])
    return Prepared(tok, _unpack(d["kept"]), drills, drills if d["later"] is None else _unpack(d["later"]),
                    _unpack(d["probe"]), d["generated"], _tuples(json.loads(d["rng_state"])), d["fields"], d["seconds"])
