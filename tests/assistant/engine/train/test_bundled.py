"""The shipped offline model (assistant/engine/bundled/lingxi-mini/): files, report, and real use.

These load the real bundled weights: a fresh held-out draw is scored again and must land near
the shipped ``eval_report.json``, and the app with no API key sets a reminder through it end to
end (the agent loop, the in-process engine over loopback HTTP, the tools and the database).

Issue 7 is open until a model meets the held-out targets; until one is committed, the module
skips (saying so). Shipping the model means deleting that skip.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta

import pytest

from assistant import reminders
from assistant.config import BUNDLED_MODEL, load_settings
from assistant.engine.train import evaluate as ev
from assistant.engine.train.loop import TrainConfig
from assistant.services import Lingxi
from tests.assistant.test_agent import collect

FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
         "train_config.json", "train_report.json", "eval_report.json", "MODEL_CARD.md")
LANGS = ("zh", "en", "all")

if not (BUNDLED_MODEL / "config.json").is_file():
    pytest.skip("no bundled model is shipped yet (issue 7): delete this skip when it is", allow_module_level=True)


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads((BUNDLED_MODEL / "eval_report.json").read_text("utf-8"))


def test_the_model_ships_in_hf_layout_under_25_mb():
    missing = [f for f in FILES if not (BUNDLED_MODEL / f).is_file()]
    assert not missing, f"{BUNDLED_MODEL} lacks {missing}"
    size = sum(p.stat().st_size for p in BUNDLED_MODEL.iterdir() if p.is_file())
    assert size <= 25 * 1024 * 1024
    cfg = json.loads((BUNDLED_MODEL / "config.json").read_text("utf-8"))
    assert cfg["model_type"] == "deepseek_v3" and cfg["scoring_func"] == "sigmoid" and cfg["topk_method"] == "noaux_tc"
    assert cfg["n_routed_experts"] > cfg["num_experts_per_tok"] >= 2
    assert "chat_template" in json.loads((BUNDLED_MODEL / "tokenizer_config.json").read_text("utf-8"))
    # The training config is the pipeline's own: `engine train --config` reproduces the run.
    TrainConfig.from_dict(json.loads((BUNDLED_MODEL / "train_config.json").read_text("utf-8")))


def test_the_shipped_report_meets_the_targets_and_the_card_quotes_it(report):
    assert (report["split"], report["errors"]) == ("heldout", 0) and report["n"] >= 400
    card = (BUNDLED_MODEL / "MODEL_CARD.md").read_text("utf-8")
    for lang in LANGS:
        for metric, target in ev.TARGETS.items():
            row = report["metrics"][lang][metric]
            assert row["value"] >= target, (lang, metric, row)
            assert f"{100 * row['value']:.1f}%" in card
    train = json.loads((BUNDLED_MODEL / "train_report.json").read_text("utf-8"))
    assert train["device"] == "cpu" and train["total_seconds"] <= 2 * 3600  # the budget
    assert train["expert_utilisation"]  # one row per MoE layer


def test_a_fresh_heldout_draw_scores_like_the_shipped_report(report, capsys):
    # Another seed than the report's: different conversations from the same held-out pools.
    seed = report["seed"] + 101
    args = argparse.Namespace(model=BUNDLED_MODEL, split="heldout", n=120, seed=seed, max_tokens=96,
                              max_batch=16, threads=None, device="cpu", json=True)
    assert ev.main(args) == 0
    fresh = json.loads(capsys.readouterr().out)
    assert fresh["errors"] == 0
    for metric in ev.TARGETS:
        shipped, now = report["metrics"]["all"][metric]["value"], fresh["metrics"]["all"][metric]["value"]
        # ~60 tool-call targets: allow sampling noise, not a different model.
        assert now >= shipped - 0.12, (metric, shipped, now)


@pytest.mark.parametrize("message, text, hour", [
    ("明天下午三点提醒我给王总回电话", "给王总回电话", 15),
    ("Remind me to water the plants tomorrow at 9am", "water the plants", 9),
])
def test_with_no_key_the_app_sets_a_reminder_through_the_bundled_model(tmp_path, monkeypatch, message, text, hour):
    monkeypatch.delenv("LINGXI_LLM_PROVIDER")  # conftest pins "openai"; this is the real default
    settings = load_settings(data_dir=tmp_path / "data", timezone="Asia/Shanghai")
    assert settings.bundled_model_in_use
    app = Lingxi.create(settings)
    try:
        _, events = collect(app, message)
        assert not [e.data for e in events if e.type == "error"]
        with app.db.session() as s:
            [reminder] = [reminders.as_dict(r) for r in reminders.list_all(session=s)]
    finally:
        app.close()
    assert reminder["text"] == text
    due = datetime.fromisoformat(reminder["due_at"]).astimezone(settings.tz)
    tomorrow = datetime.now(settings.tz).date() + timedelta(days=1)
    assert (due.date(), due.hour, due.minute) == (tomorrow, hour, 0)
