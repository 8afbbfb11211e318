"""LINGXI_LLM_PROVIDER=local: the engine inside the app, reached through the openai SDK over loopback HTTP."""

from __future__ import annotations

import openai

from assistant.config import load_settings
from assistant.engine.provider import LocalProvider
from assistant.services import Lingxi
from tests.assistant.test_agent import collect


def test_local_provider_serves_the_checkpoint_to_the_sdk(build_ckpt, tmp_path):
    settings = load_settings(llm_provider="local", local_model=build_ckpt("v3_qlora"), data_dir=tmp_path / "data",
                             local_max_tokens=16)
    local = LocalProvider.start(settings)
    try:
        client = openai.OpenAI(base_url=local.base_url, api_key="none")
        assert [m.id for m in client.models.list().data] == ["v3_qlora"]
        reply = client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}],
                                               max_tokens=5, temperature=0)
        assert reply.usage.completion_tokens <= 5 and reply.choices[0].finish_reason in ("length", "stop")
        again = client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}],
                                               max_tokens=5, temperature=0)
        assert again.choices[0].message.content == reply.choices[0].message.content  # greedy: deterministic
        unbounded = client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}],
                                                   temperature=0)  # no max_tokens: settings.local_max_tokens
        assert unbounded.usage.completion_tokens <= 16
    finally:
        local.close()
    assert not local.thread.is_alive()


def test_the_app_runs_on_the_local_engine_and_explains_a_too_long_prompt(build_ckpt, tmp_path):
    # The tiny checkpoint has a 256-token context: the owner's prompt and tools do not fit, which must
    # come back as a clear error while the user's message is kept.
    settings = load_settings(llm_provider="local", local_model=build_ckpt("v3_qlora"), data_dir=tmp_path / "data",
                             timezone="UTC")
    app = Lingxi.create(settings)
    try:
        assert app.settings.llm_model == "v3_qlora" and app.settings.llm_base_url == app.local.base_url
        _, events = collect(app, "你好")
        [error] = [e.data for e in events if e.type == "error"]
        assert error["code"] == "bad_request" and "context length" in error["message"]
        assert events[-1].type == "done"
    finally:
        app.close()
