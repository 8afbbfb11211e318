"""Training data made once into a file (``prepared``), and training from it where the app's packages are absent."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from assistant.engine.config import EngineError
from assistant.engine.train import loop, prepared
from assistant.engine.train.curriculum import Encoded

from .test_train import SMALL

ROOT = Path(__file__).resolve().parents[4]
TINY = {"examples": 60, "vocab_size": 400, "tokenizer_examples": 60, "steps": 3, "copy_drills": 200,
        "drill_steps": 1, "drill_lengths": [3, 5], "batch_tokens": 1024, "warmup": 1, "precision": "fp32",
        "threads": 1, "shape": SMALL.__dict__ | {"vocab_size": 0}}


@pytest.fixture(scope="module")
def cfg():
    return loop.TrainConfig.from_dict(TINY)


@pytest.fixture(scope="module")
def made(cfg):
    return prepared.prepare(cfg)


def test_packing_keeps_every_token_and_every_target_run():
    items = [Encoded([5, 6, 7, 8], [False, True, True, False]), Encoded([9, 10], [True, True]),
             Encoded([], []), Encoded([3, 4, 5], [False, False, False]), Encoded([40000, 1, 2], [True, False, True])]
    packed = prepared._pack(items)
    assert packed["ids"].dtype.itemsize == 4  # 40000 does not fit int16
    assert prepared._unpack(packed) == items
    assert prepared._pack(items[:4])["ids"].dtype.itemsize == 2


def test_a_saved_file_reads_back_the_same_data(made, cfg, tmp_path):
    path = tmp_path / "data.pt"
    prepared.save(made, path)
    back = prepared.load(path, cfg)
    assert back.kept == made.kept and back.probe == made.probe and back.drills == made.drills
    assert back.later == made.later and back.later is not back.drills  # widened drills after the phase
    assert back.tok.to_str() == made.tok.to_str() and back.rng_state == made.rng_state
    assert back.generated == cfg.examples and back.fields == prepared.data_fields(cfg)
    assert sum(map(sum, (e.targets for e in back.kept))) > 0


def test_other_data_settings_or_a_broken_file_are_one_clear_error(made, cfg, tmp_path):
    path = tmp_path / "data.pt"
    prepared.save(made, path)
    with pytest.raises(EngineError, match=r"other data settings: examples 60 \(the config says 61\)"):
        prepared.load(path, replace(cfg, examples=61))
    prepared.load(path, replace(cfg, minutes=3.0, lr=1e-3))  # optimisation settings are free to differ
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(EngineError, match="cannot read prepared training data"):
        prepared.load(path, cfg)


def test_training_from_the_file_takes_the_same_steps_as_making_the_data(made, cfg, tmp_path):
    path = tmp_path / "data.pt"
    prepared.save(made, path)
    made_here = loop.train(cfg, tmp_path / "a", log=lambda _: None)
    from_file = loop.train(cfg, tmp_path / "b", log=lambda _: None, data=path)
    assert [p["loss"] for p in from_file["loss_curve"]] == [p["loss"] for p in made_here["loss_curve"]]
    assert from_file["data"] == str(path) and made_here["data"] == "generated"
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (tmp_path / "b" / "tokenizer.json").read_text()


# Stand-ins that fail on import: the lent GPU machine has torch and tokenizers, not these.
BLOCK = "import sys\nfor m in ('sqlalchemy', 'pydantic', 'pydantic_settings', 'apscheduler', 'openai', 'gradio', 'chromadb'):\n    sys.modules[m] = None\n"


def test_the_engine_trains_from_a_prepared_file_without_the_apps_packages(tmp_path, capsys):
    from app import main as app_main

    config, data, out = tmp_path / "train_config.json", tmp_path / "data.pt", tmp_path / "model"
    config.write_text(json.dumps(TINY))
    assert app_main(["engine", "train", "--prepare", str(data), "--config", str(config)]) == 0
    assert f"wrote {data}" in capsys.readouterr().out
    (tmp_path / "sitecustomize.py").write_text(BLOCK)

    def engine_without_app(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "assistant.engine", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{tmp_path}:{ROOT}"})

    run = engine_without_app("train", "--data", str(data), "--config", str(config), "--out", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((out / "train_report.json").read_text())
    assert report["steps"] == 3 and report["data"] == str(data) and (out / "model.safetensors").is_file()
    # Without --data the same command needs the generator, which needs the app: one line, not a traceback.
    bad = engine_without_app("train", "--prepare", str(tmp_path / "x.pt"))
    assert bad.returncode == 2 and "needs the app's packages" in bad.stderr and "Traceback" not in bad.stderr


def test_prepare_refuses_an_out_directory(tmp_path, capsys):
    from app import main as app_main

    assert app_main(["engine", "train", "--prepare", str(tmp_path / "d.pt"), "--out", str(tmp_path / "m")]) == 2
    assert "--prepare makes the data only" in capsys.readouterr().err
    assert app_main(["engine", "train", "--examples", "5"]) == 2
    assert "needs --out DIR" in capsys.readouterr().err


def test_prepare_keeps_an_existing_file_unless_forced(tmp_path, capsys):
    from app import main as app_main

    data = tmp_path / "d.pt"
    data.write_bytes(b"an earlier run's data")
    assert app_main(["engine", "train", "--prepare", str(data)]) == 2
    assert f"{data} exists (pass --force to overwrite)" in capsys.readouterr().err
    assert data.read_bytes() == b"an earlier run's data"
