"""scripts/device_check.sh, the one command a lent GPU machine runs, dry-run on the CPU with tiny data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from assistant.engine.train import loop, prepared
from tests.assistant.engine.train.test_prepared import TINY

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_device_script_trains_from_prepared_data_compares_devices_and_packs_the_run(tmp_path):
    repo = tmp_path / "repo"  # a copy, as the device gets one: the script writes into .gpu/
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".venv", ".git", ".gpu", "data", "__pycache__", ".pytest_cache"))
    base = tmp_path / "base.json"
    base.write_text(json.dumps(TINY))
    (repo / ".gpu").mkdir()
    prepared.save(prepared.prepare(loop.TrainConfig.from_dict(TINY)), repo / ".gpu" / "data.pt")
    out = tmp_path / "out"
    env = {"PATH": os.environ["PATH"], "DEVICE": "cpu", "BASE_CONFIG": str(base), "PY": sys.executable,
           "OUT": str(out), "MINUTES": "5", "BATCH_TOKENS": "2048", "HOME": str(tmp_path)}
    run = subprocess.run(["bash", "scripts/device_check.sh"], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert "TRAIN FAILED" not in run.stdout, run.stderr[-3000:]
    assert "'steps': 3" in run.stdout and "'device': 'cpu'" in run.stdout
    assert "cpu batched == one at a time: True" in run.stdout, run.stdout + run.stderr[-3000:]
    assert "cpu == cpu (greedy, 48 tokens, 6 prompts): True" in run.stdout
    parts = sorted(out.glob("run.tar.part-*"))
    assert parts and all(p.stat().st_size <= 15 * 2 ** 20 for p in parts)
    packed = tmp_path / "run.tar"
    packed.write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(packed) as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "train_report.json"} <= names
    assert json.loads((repo / ".gpu" / "train_config.json").read_text())["batch_tokens"] == 2048
