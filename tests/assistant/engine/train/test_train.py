"""The training side of the bundled model: tokenizer, template, trainable engine model, loop."""

from __future__ import annotations

import json
import os
import random
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from assistant.engine.config import EngineConfig, EngineError
from assistant.engine.loader import load_model
from assistant.engine.train import loop, prepared
from assistant.engine.train import model as tmodel
from assistant.engine.train import tokenizer as ttok
from assistant.engine.train.curriculum import Encoded

TOOLS = [{"type": "function", "function": {"name": n, "description": "", "parameters": {"type": "object"}}}
         for n in ("create_reminder", "list_events")]
CONVO = [
    {"role": "system", "content": "You are Lingxi."},
    {"role": "user", "content": "明天下午三点提醒我给王总回电话"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "create_reminder", "arguments": json.dumps({"text": "给王总回电话", "when": "明天下午三点"},
                                                           ensure_ascii=False)}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"ok": true}'},
    {"role": "assistant", "content": "好的，明天下午三点提醒您给王总回电话。"},
]
SMALL = tmodel.Shape(vocab_size=300, hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                     n_routed_experts=4, num_experts_per_tok=2, num_hidden_layers=3, num_attention_heads=2,
                     kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8)


def small_chat():
    """A chat tokenizer trained on CONVO and a few phrases: small, and enough for the markers and names."""
    texts = [ttok.chat_tokenizer(prepared.render_tokenizer()).apply_chat_template(CONVO, TOOLS, add_generation_prompt=False)]
    texts += ["Remind me to call Alice at 9am tomorrow", "下周一早上9点开会", "What are your opening hours?"] * 20
    return ttok.chat_tokenizer(ttok.train_tokenizer(texts, 400))


@pytest.fixture(scope="module")
def chat():
    return small_chat()


def small_cfg(shape=SMALL, **extra) -> EngineConfig:
    return EngineConfig.from_dict(tmodel.hf_config(tmodel.Shape(**{**shape.__dict__, **extra}),
                                                   bos_token_id=0, eos_token_id=1))


def test_template_lists_tool_names_and_control_tokens_stay_whole(chat):
    text = chat.apply_chat_template(CONVO[:2], TOOLS)
    assert text.startswith(ttok.BOS + "You are Lingxi.\n\nTools: create_reminder, list_events" + ttok.USER)
    assert "parameters" not in text  # names only, never the JSON schemas
    ids = chat.encode(text)
    for special in (ttok.BOS, ttok.USER, ttok.ASSISTANT):
        assert chat.token_to_id(special) in ids
    assert chat.tokenizer.decode(chat.encode("下周一早上9点 opening"), skip_special_tokens=False) == "下周一早上9点 opening"


@pytest.mark.parametrize("profile", ["owner", "customer_service"])
def test_template_condenses_the_built_in_system_prompts_to_a_profile_tag(chat, profile):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from assistant.prompts import system_prompt

    now = datetime(2026, 11, 22, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    msgs = [{"role": "system", "content": system_prompt(profile, now)}, {"role": "user", "content": "hi"}]
    assert chat.apply_chat_template(msgs) == f"{ttok.BOS}[{profile}]{ttok.USER}hi{ttok.ASSISTANT}"
    custom = [{"role": "system", "content": "Answer like a pirate."}, {"role": "user", "content": "hi"}]
    assert chat.apply_chat_template(custom) == f"{ttok.BOS}Answer like a pirate.{ttok.USER}hi{ttok.ASSISTANT}"


@pytest.mark.parametrize("profile", ["owner", "customer_service"])
def test_template_leaves_out_the_tool_line_only_for_a_profiles_own_tools(chat, profile):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from assistant.prompts import system_prompt
    from tools.registry import PROFILES

    def schemas(names):
        return [{"type": "function", "function": {"name": n, "description": "", "parameters": {"type": "object"}}}
                for n in names]

    now = datetime(2026, 11, 22, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    msgs = [{"role": "system", "content": system_prompt(profile, now)}, {"role": "user", "content": "hi"}]
    own = sorted(PROFILES[profile], reverse=True)  # the order they come in does not matter
    assert chat.apply_chat_template(msgs, schemas(own)) == f"{ttok.BOS}[{profile}]{ttok.USER}hi{ttok.ASSISTANT}"
    fewer = own[1:]
    assert chat.apply_chat_template(msgs, schemas(fewer)).startswith(
        f"{ttok.BOS}[{profile}]\n\nTools: {', '.join(fewer)}{ttok.USER}")
    other = "owner" if profile == "customer_service" else "customer_service"
    theirs = sorted(PROFILES[other])  # another profile's set is listed, as any other set is
    assert f"Tools: {', '.join(theirs)}" in chat.apply_chat_template(msgs, schemas(theirs))


def test_markers_are_kept_when_decoding_and_only_bos_eos_pad_are_special(chat):
    ids = chat.encode(ttok.CALLS_BEGIN + ttok.CALL_BEGIN + "function" + ttok.TOOL_SEP + "x" + ttok.EOS)
    assert chat.decode(ids, skip_special_tokens=True) == ttok.CALLS_BEGIN + ttok.CALL_BEGIN + "function" + ttok.TOOL_SEP + "x"
    special = {t.content for t in chat.tokenizer.get_added_tokens_decoder().values() if t.special}
    assert special == {ttok.BOS, ttok.EOS, ttok.PAD}
    assert [chat.token_to_id(t) for t in (ttok.BOS, ttok.EOS, ttok.PAD)] == [0, 1, 2]
    # At most 400 learned ids (a corpus this small may run out of merges), then the markers.
    assert chat.vocab_size <= 400 + len(ttok.MARKERS)
    assert [chat.token_to_id(m) for m in ttok.MARKERS] == list(range(chat.vocab_size - len(ttok.MARKERS), chat.vocab_size))


@pytest.mark.parametrize("said, span", [("明天下午三点提醒我给王总回电话", "给王总回电话"),
                                        ("please remind me to call the landlord tonight", "call the landlord")])
def test_a_copied_span_is_tokenised_as_in_the_sentence_it_comes_from(chat, said, span):
    # A tool argument repeats a span of the user's words: its tokens must be the same pieces,
    # or copying it means learning a second spelling of every word.
    sentence = chat.encode(said, add_bos=False)
    argument = chat.encode('{"text": "' + span + '"}', add_bos=False)
    pieces = chat.encode(span, add_bos=False)
    assert any(sentence[i : i + len(pieces)] == pieces for i in range(len(sentence)))
    assert any(argument[i : i + len(pieces)] == pieces for i in range(len(argument)))


def test_encode_marks_exactly_the_assistant_tokens(chat):
    enc = prepared.encode(chat, SimpleNamespace(messages=CONVO, tools=TOOLS))
    assert len(enc.ids) == len(enc.targets)
    spans, start = [], None
    for i, t in enumerate(enc.targets + [False]):
        if t and start is None:
            start = i
        elif not t and start is not None:
            spans.append(chat.tokenizer.decode(enc.ids[start:i], skip_special_tokens=False))
            start = None
    assert len(spans) == 2
    assert spans[0].startswith(ttok.CALLS_BEGIN) and spans[0].endswith(ttok.EOS) and "给王总回电话" in spans[0]
    assert spans[1] == "好的，明天下午三点提醒您给王总回电话。" + ttok.EOS
    user = chat.tokenizer.decode([i for i, t in zip(enc.ids, enc.targets) if not t], skip_special_tokens=False)
    assert "明天下午三点提醒我" in user and "好的" not in user


@pytest.mark.parametrize("q_lora_rank", [None, 24])
def test_training_forward_equals_the_serving_forward(q_lora_rank):
    cfg = small_cfg(q_lora_rank=q_lora_rank)
    params = tmodel.init_params(cfg, seed=1, std=0.1)
    model = tmodel.build(cfg, params)
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(0, cfg.vocab_size, (n,), generator=g) for n in (11, 7)]
    ids = torch.full((2, 11), 2, dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = s
    with torch.no_grad():
        hidden = model.forward_train(ids).view(2, 11, -1)
        for row, s in enumerate(seqs):
            served = model.forward(s, None, model.new_cache())
            trained = model.logits(hidden[row, : len(s)])
            torch.testing.assert_close(trained, served, atol=1e-4, rtol=1e-4)


def test_gradients_reach_every_trainable_weight_and_not_the_router_bias():
    cfg = small_cfg()
    params = tmodel.init_params(cfg, seed=0)
    batch = [Encoded(list(range(3, 40)), [False] * 20 + [True] * 17), Encoded(list(range(5, 20)), [True] * 15)]
    loss, n = loop.loss_of(tmodel.build(cfg, params), batch, pad_id=2)
    assert n == 17 + 15 - 1  # the first token is never a label
    loss.backward()
    missing = [name for name, t in params.items() if t.requires_grad and (t.grad is None or not t.grad.abs().sum() > 0)
               and ".experts." not in name]  # an expert no token chose has a zero gradient
    assert missing == []
    assert all(not t.requires_grad for name, t in params.items() if name.endswith("e_score_correction_bias"))
    assert params["model.layers.1.mlp.gate.weight"].grad.abs().sum() > 0


def test_moe_gradients_match_a_token_by_token_reference():
    """The MoE's grouped dispatch (split, per-expert views, cat, a permutation with a gather for its
    backward) gives the gradients of the plain sum over each token's chosen experts."""
    cfg = small_cfg()
    params = tmodel.init_params(cfg, seed=3, std=0.1)
    moe = tmodel.build(cfg, params).layers[1].mlp
    x = torch.randn(9, cfg.hidden_size, generator=torch.Generator().manual_seed(4), requires_grad=True)
    leaves = [x] + [t for name, t in params.items() if ".layers.1.mlp." in name and t.requires_grad]
    probe = torch.randn(9, cfg.hidden_size, generator=torch.Generator().manual_seed(5))

    def expert(e: int, v: torch.Tensor) -> torch.Tensor:
        h = moe.w13[e] @ v
        return moe.w2[e] @ (F.silu(h[: moe.inter]) * h[moe.inter:])

    weights, idx = moe.gate.route(x)
    reference = torch.stack([sum(weights[t, j] * expert(int(idx[t, j]), x[t]) for j in range(idx.shape[1]))
                             for t in range(x.shape[0])]) + moe.shared.forward(x)
    got = torch.autograd.grad((moe.forward(x) * probe).sum(), leaves)
    want = torch.autograd.grad((reference * probe).sum(), leaves)
    assert len(set(idx.flatten().tolist())) > 1  # several experts, so the dispatch really sorts
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_steer_bias_lifts_idle_experts_and_lowers_busy_ones():
    cfg = small_cfg()
    params = tmodel.init_params(cfg)
    model = SimpleNamespace(layers=[SimpleNamespace(mlp=object())] + [
        SimpleNamespace(mlp=SimpleNamespace(last_counts=[9, 1, 1, 1])) for _ in range(2)])
    loop.steer_bias(params, model, 0.01)
    bias = params["model.layers.1.mlp.gate.e_score_correction_bias"]
    assert bias[0] == pytest.approx(-0.01) and torch.allclose(bias[1:], torch.full((3,), 0.01))


@pytest.mark.parametrize("low", [None, torch.bfloat16])  # fp32, and bf16 autocast as ``precision`` picks it
def test_loss_falls_when_fitting_a_few_conversations(low):
    cfg = small_cfg()
    params = tmodel.init_params(cfg, seed=0)
    rng = random.Random(0)
    data = [Encoded([rng.randrange(3, 300) for _ in range(24)], [True] * 24) for _ in range(4)]
    opt = torch.optim.AdamW([t for t in params.values() if t.requires_grad], lr=1e-2)
    losses = []
    for _ in range(40):
        model = tmodel.build(cfg, params)
        with torch.autocast("cpu", dtype=low or torch.float32, enabled=low is not None):
            loss, _ = loop.loss_of(model, data, pad_id=2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            loop.steer_bias(params, model, 1e-3)
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_saved_checkpoint_loads_in_the_engine_and_in_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg_dict = tmodel.hf_config(SMALL, bos_token_id=0, eos_token_id=1)
    cfg = EngineConfig.from_dict(cfg_dict)
    params = tmodel.init_params(cfg, seed=3, std=0.1)
    with torch.no_grad():
        for name, t in params.items():
            if name.endswith("e_score_correction_bias"):
                t.copy_(torch.linspace(-0.05, 0.05, t.numel()))  # the bias must survive the round trip
    tmodel.save(tmp_path, cfg_dict, params, dtype=torch.float32)
    ids = torch.randint(0, cfg.vocab_size, (13,), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = tmodel.build(cfg, params).forward(ids, None, tmodel.build(cfg, params).new_cache())
        loaded = load_model(tmp_path)
        torch.testing.assert_close(loaded.forward(ids, None, loaded.new_cache()), ours, atol=1e-5, rtol=1e-5)
        ref = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, torch_dtype=torch.float32).eval()
        torch.testing.assert_close(ref(ids[None]).logits[0], ours, atol=1e-4, rtol=1e-4)


def test_precision_names_the_autocast_dtype():
    cpu = torch.device("cpu")
    assert loop.autocast_dtype("fp32", cpu) is None and loop.autocast_dtype("bf16", cpu) is torch.bfloat16
    assert loop.autocast_dtype("auto", cpu) in (None, torch.bfloat16)
    with pytest.raises(EngineError, match="precision must be auto, bf16 or fp32"):
        loop.autocast_dtype("fp16", cpu)


def test_a_bad_precision_in_a_config_file_is_one_line_before_any_work(tmp_path, capsys):
    from app import main as app_main

    config = tmp_path / "train_config.json"
    config.write_text(json.dumps({"precision": "fp16"}))
    assert app_main(["engine", "train", "--out", str(tmp_path / "m"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "precision must be auto, bf16 or fp32, not 'fp16'" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_a_config_file_keeps_defaults_and_reads_back_what_training_wrote():
    from dataclasses import asdict

    cfg = loop.TrainConfig.from_dict({"choice_arguments": 4, "drill_lengths": [3, 9], "drill_target": None,
                                      "shape": {"hidden_size": 64, "q_lora_rank": None}})
    assert cfg.choice_arguments == 4.0 and cfg.drill_lengths == (3, 9) and cfg.drill_target is None
    assert cfg.shape.hidden_size == 64 and cfg.examples == loop.TrainConfig().examples
    written = json.loads(json.dumps(asdict(loop.TrainConfig())))  # what train_config.json holds
    assert loop.TrainConfig.from_dict(written) == loop.TrainConfig()


def test_the_default_recipe_weights_arguments_and_values_and_one_key_turns_both_off():
    cfg = loop.TrainConfig()
    assert cfg.choice_arguments == 4.0 and cfg.choice_values  # runs 27 and 28's recipe
    off = loop.TrainConfig.from_dict({"choice_arguments": 1})  # no refusal: values go with the arguments
    assert off.choice_arguments == 1.0 and off.shape == cfg.shape


@pytest.mark.parametrize("config, says", [
    ({"drill_distinct": "no"}, "TrainConfig.drill_distinct must be bool, not 'no'"),
    ({"choice_arguments": True}, "TrainConfig.choice_arguments must be float, not True"),  # run 24's on/off
    ({"lr": "1e-3"}, "TrainConfig.lr must be float, not '1e-3'"),
    ({"steps": True}, "TrainConfig.steps must be int, not True"),
    ({"drill_lengths": [3]}, "TrainConfig.drill_lengths must be tuple[int, int], not [3]"),
    ({"chioce_weight": 2}, "unknown TrainConfig field 'chioce_weight'"),
    ({"choice_values": True, "choice_arguments": 1}, "TrainConfig.choice_values weights the arguments' tokens: it needs choice_arguments"),
    ({"shape": {"hidden_size": 1.5}}, "Shape.hidden_size must be int, not 1.5"),
    ([], "a training config is a JSON object, not list"),
])
def test_a_config_file_of_the_wrong_type_is_one_line_naming_the_field(tmp_path, capsys, config, says):
    from app import main as app_main

    path = tmp_path / "train_config.json"
    path.write_text(json.dumps(config))
    assert app_main(["engine", "train", "--out", str(tmp_path / "m"), "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("logits, chosen", [((0.0, 4e-3, 2e-3, -1.0), [1, 2]), ((4e-3, 2e-3, 0.0, -1.0), [0, 1])])
def test_the_router_chooses_in_fp32_under_bf16_autocast(logits, chosen):
    """Scores 0.001 apart, as the bias steering (1e-3 a step) leaves them: the choice is fp32's.
    In bf16 the three scores near 0.5 all round to 0.5 and tie, and a tie cannot give both answers."""
    from assistant.engine.moe import Gate

    cfg = small_cfg()
    weight = torch.zeros(cfg.n_routed_experts, cfg.hidden_size)
    weight[:, 0] = torch.tensor(logits)  # the router logits for x = e_0
    gate = Gate(cfg, weight, torch.zeros(cfg.n_routed_experts))
    x = torch.zeros(1, cfg.hidden_size)
    x[0, 0] = 1.0
    assert gate.route(x)[1].sort().values.tolist() == [chosen]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gate.route(x)[1].sort().values.tolist() == [chosen]


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    cfg = loop.TrainConfig(steps=100, warmup=10, lr=1e-3, min_lr=1e-5)
    lrs = [loop.lr_at(s, cfg) for s in range(100)]
    assert lrs[0] < lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] == pytest.approx(1e-5, rel=0.05)


def test_training_with_drills_reports_them_and_restarts_a_stalled_drill_phase(tmp_path, monkeypatch):
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    cfg = loop.TrainConfig.from_dict({"examples": 60, "vocab_size": 400, "tokenizer_examples": 60, "steps": 2,
                                      "copy_drills": 500, "drill_steps": 2, "drill_restarts": 1, "seed": 5,
                                      "drill_lengths": [3, 5], "batch_tokens": 512, "warmup": 1,
                                      "precision": "fp32", "choice_arguments": 4.0, "shape": SMALL.__dict__ | {"vocab_size": 0}})
    lines: list[str] = []
    report = loop.train(cfg, tmp_path / "model", log=lines.append)
    assert report["precision"] == "fp32" and "; fp32 on cpu" in lines[1]
    assert report["copy_drills"] == 500 and report["steps"] == 2 and report["final_loss"] > 0
    # Two drill steps (the cap, no copying in two steps), a fresh start from seed 6's weights, two drill
    # steps again, and then, no restart left, the conversations.
    said = [x for x in lines if x.startswith("drills alone: 2 steps, drill loss ")]
    assert len(said) == 2 and all(x.endswith("the cap came first; copying may not have formed") for x in said)
    assert lines.index("drill phase stalled: starting again from the weights of seed 6") == lines.index(said[0]) + 1
    assert [r["seed"] for r in report["drill_restarts"]] == [5] and report["drill_restarts"][0]["steps"] == 2
    assert report["weights_seed"] == 6 and report["loss_curve"][0]["step"] == 0
    assert report["drill_phase"]["steps"] == 2 and report["drill_phase"]["copying_formed"] is False
    assert report["drill_phase"]["loss"] > 1.5
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == loop.KERNEL_CACHE  # room for every kernel the run compiles


def test_a_kernel_cache_capacity_set_in_the_environment_stands(monkeypatch):
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
    loop.roomy_kernel_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "64"


def test_cross_entropy_only_counts_target_rows():
    cfg = small_cfg()
    params = tmodel.init_params(cfg, seed=0)
    model = tmodel.build(cfg, params)
    e = Encoded(list(range(3, 23)), [False] * 10 + [True] * 10)
    loss, n = loop.loss_of(model, [e], pad_id=2)
    with torch.no_grad():
        logits = model.forward(torch.tensor(e.ids), None, model.new_cache())
    expected = F.cross_entropy(logits[9:19], torch.tensor(e.ids[10:20]))
    assert n == 10 and loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_train_command_smoke_writes_a_checkpoint_the_engine_serves(tmp_path, capsys):
    """CI never retrains the bundled model; this trains a few steps end to end through the CLI."""
    from app import main as app_main
    from assistant.engine.engine import LLMEngine
    from assistant.engine.sampler import SamplingParams
    from assistant.engine.tokenizer import ChatTokenizer

    config = tmp_path / "train_config.json"
    config.write_text(json.dumps({"examples": 80, "vocab_size": 500, "tokenizer_examples": 80, "steps": 3,
                                  "batch_tokens": 4096, "warmup": 2, "copy_drills": 100, "drill_steps": 1, "shape": SMALL.__dict__ | {"vocab_size": 0}}))
    out = tmp_path / "model"
    assert app_main(["engine", "train", "--out", str(out), "--config", str(config), "--threads", "1",
                     "--precision", "bf16"]) == 0
    report = json.loads((out / "train_report.json").read_text())
    assert report["steps"] == 3 and report["stopped_by"] == "steps" and report["final_loss"] > 0
    assert report["precision"] == "bf16"  # --precision reaches the loop
    assert report["device"] == ("cuda" if torch.cuda.is_available() else "cpu")  # --device auto
    assert set(report["expert_utilisation"]) == {"1", "2"}  # layer 0 is dense
    for layer in report["expert_utilisation"].values():
        assert len(layer["share"]) == 4 and sum(layer["share"]) == pytest.approx(1.0, abs=1e-3)
    assert json.loads((out / "train_config.json").read_text())["steps"] == 3
    written = json.loads((out / "config.json").read_text())
    assert written["torch_dtype"] == "bfloat16"
    assert written["lingxi_copy_arguments"] is written["lingxi_copy_answers"] is True  # served guided
    # The engine loads it as it loads any DeepSeek checkpoint, chat template included.
    chat = ChatTokenizer.from_dir(out)
    assert chat.template_source == "tokenizer_config.json"
    assert chat.tool_result_view == "compact"  # served the tool results' view it was trained on
    with LLMEngine(out) as engine:
        ids = chat.encode_chat([{"role": "user", "content": "明天下午三点提醒我开会"}])
        result = engine.generate(ids, SamplingParams(max_tokens=4, temperature=0.0))
    assert result.finish_reason in ("length", "stop") and 1 <= len(result.token_ids) <= 4
    # A second run into the same directory is refused without --force, in one line.
    assert app_main(["engine", "train", "--out", str(out), "--config", str(config)]) == 2
    assert "not empty" in capsys.readouterr().err



@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a machine without a GPU gives")
def test_training_on_cuda_without_a_gpu_fails_at_once_and_says_why(tmp_path, capsys):
    from app import main as app_main

    assert app_main(["engine", "train", "--out", str(tmp_path / "m"), "--device", "cuda", "--examples", "90000"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_model_card_is_written_from_the_run_reports(tmp_path):
    from assistant.engine.train import card

    cfg = tmodel.hf_config(SMALL, bos_token_id=0, eos_token_id=1)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(ttok.tokenizer_config()))
    (tmp_path / "train_config.json").write_text(json.dumps({**loop.TrainConfig().__dict__, "shape": SMALL.__dict__},
                                                           default=str))
    share = [0.25, 0.25, 0.3, 0.2]
    (tmp_path / "train_report.json").write_text(json.dumps({
        "steps": 123, "epochs": 1.5, "stopped_by": "time", "device": "cpu", "precision": "bf16", "threads": 2, "train_seconds": 600,
        "total_seconds": 700, "parameters": 1_234_567, "final_loss": 0.42, "copy_drills": 40000,
        "drill_phase": {"steps": 812, "loss": 1.43, "copying_formed": True},
        "expert_utilisation": {"1": {"share": share, "max_over_mean": 1.2, "min_over_mean": 0.8}}}))
    metric = {"hits": 9, "n": 10, "value": 0.9}
    (tmp_path / "eval_report.json").write_text(json.dumps({"n": 300, "seed": 0, "guided": True, "metrics": {
        lang: {"tool_selection": metric, "argument_match": {"hits": 1, "n": 4, "value": 0.25}} for lang in ("zh", "en", "all")},
        "by_tool": {"create_ticket": {"zh": {"n": 5, "selected": 4, "args": 2, "instead": {"(no call)": 1}}}},
        "argument_errors": {"span: cut short": {"zh": 2, "all": 2}}}))
    assert card.main([str(tmp_path)]) == 0
    text = (tmp_path / "MODEL_CARD.md").read_text()
    assert "1.2 M-parameter" in text and "123 AdamW steps" in text and "stopped by time" in text
    assert "on the CPU (2 threads, bf16)" in text
    assert "| tool selection (target ≥ 90%) | 90.0% (9/10) | 90.0% (9/10) | 90.0% (9/10) |" in text
    assert "25.0% (1/4)" in text and "| 1 | 25% 25% 30% 20% | 1.2 | 0.8 |" in text
    assert "faithfulness | – |" in text  # a metric the report lacks is a dash, not an error
    assert "Plus 40000 copy drills (a random span of 3-12 distinct tokens said twice" in text
    assert "first 812 steps on drills alone, until copying formed, in batches of 32; afterwards 30% of drill tokens" in text
    assert "copied words and contacts are random, some of them made-up" in text
    assert "greedy decoding, tool arguments copy-guided as the engine serves them" in text
    assert "It reads them, trained and served, in a shorter view (`assistant/engine/toolview.py`" in text
    assert "| `create_ticket` | 4, 2 of 5 | – |" in text
    assert "| span: cut short | 2 | 0 |" in text
    assert "In 80% of requests the" in text and "50% are phrased from pieces" in text and "50% of the\n  grounded" in text


def test_the_loss_weights_the_choosing_tokens():
    cfg = small_cfg()
    model = tmodel.build(cfg, tmodel.init_params(cfg, seed=0))
    e = Encoded(list(range(3, 23)), [False] * 10 + [True] * 10)
    # ids[9] opens the reply (position 10 chosen); ids[14] is the name marker, the name runs to ids[16].
    choose = loop.Choosing(frozenset({12}), 17, frozenset({19}), 3.0)
    assert choose.positions(e) == [10, 15, 16]
    loss, n = loop.loss_of(model, [e], pad_id=2, choose=choose)
    with torch.no_grad():
        logits = model.forward(torch.tensor(e.ids), None, model.new_cache())
    each = F.cross_entropy(logits[9:19], torch.tensor(e.ids[10:20]), reduction="none")
    weights = torch.tensor([3.0, 1, 1, 1, 1, 3, 3, 1, 1, 1])
    assert n == 10 and loss.item() == pytest.approx(((each * weights).sum() / weights.sum()).item(), rel=1e-4)
    assert loss.item() != pytest.approx(each.mean().item(), abs=1e-4)  # the weights changed it
