"""Session-scoped tiny checkpoints for the engine tests (built once, offline)."""

from __future__ import annotations

import pytest
import torch

from . import checkpoints


@pytest.fixture(scope="session")
def ckpt_root(tmp_path_factory):
    return tmp_path_factory.mktemp("engine_ckpts")


@pytest.fixture(scope="session")
def build_ckpt(ckpt_root):
    """``build_ckpt(name)`` -> directory of that variant, built on first use."""
    built = {}

    def get(name: str):
        if name not in built:
            built[name] = checkpoints.build(name, ckpt_root / name)
        return built[name]

    return get


@pytest.fixture(scope="session")
def prompt_ids():
    """64 real token ids from the DeepSeek tokenizer (as a LongTensor [64])."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(checkpoints.TOKENIZER_DIR / "tokenizer.json"))
    text = ("Lingxi runs DeepSeek locally: multi-head latent attention caches one compressed vector per "
            "token, and the mixture of experts reads only the experts each token is routed to. "
            "今天天气很好，我们去公园散步吧。The quick brown fox jumps over the lazy dog, twice or thrice, then rests under an old oak tree by the river.")
    ids = tok.encode(text).ids
    assert len(ids) >= 64, len(ids)
    return torch.tensor(ids[:64])


@pytest.fixture(scope="module")
def chat():
    """A small byte-level BPE trained on the bundled model's data, as a chat tokenizer (guide tests)."""
    from assistant.engine.train import data
    from assistant.engine.train import tokenizer as ttok
    from assistant.engine.train.prepared import render_tokenizer

    render = ttok.chat_tokenizer(render_tokenizer())
    texts = [render.apply_chat_template(e.messages, e.tools, add_generation_prompt=False)
             for e in data.generate("train", 300, seed=3, random_fill=0.8)]
    return ttok.chat_tokenizer(ttok.train_tokenizer(texts, 1200))


@pytest.fixture(scope="module")
def vocab(chat):
    """``chat``'s table for the guides (``copyguide.GuideVocab``)."""
    from assistant.engine.copyguide import GuideVocab

    return GuideVocab.of(chat)
