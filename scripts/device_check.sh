#!/usr/bin/env bash
# The GPU checks of issues 6 and 7 as one command for a lent device machine, which has torch and
# tokenizers but none of the app's packages, and nothing to download them from.
#
# Here, first:   python app.py engine train --prepare .gpu/data.pt [--force]   (~2.5 min, ~40 MiB)
# Then:          device run(command="bash scripts/device_check.sh", carry=[".gpu"], timeout_s=600)
#
# 1. Trains the bundled model on the GPU from the prepared data (engine train --data --device cuda)
#    for MINUTES minutes with BATCH_TOKENS tokens a batch.
# 2. Runs the result on CUDA and on the CPU and compares the greedy continuations of a few chat
#    prompts, one at a time and batched: the engine's CUDA path (issue 6).
# 3. Leaves the checkpoint in $OUT as run.tar.part-* (a file that comes back is at most 16 MiB).
#    Here: cat run.tar.part-* | tar xf - -C DIR, then python app.py engine eval-assistant --model DIR.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MINUTES=${MINUTES:-6}
BATCH_TOKENS=${BATCH_TOKENS:-16384}
OUT=${OUT:-/tmp/device_out}
# For a dry run on a machine without a GPU (tests/scripts/test_device_check.py): DEVICE=cpu, a
# BASE_CONFIG the data was prepared with, and PY for the interpreter.
DEVICE=${DEVICE:-cuda}
BASE_CONFIG=${BASE_CONFIG:-}
PY=${PY:-python3}
RUN=/tmp/lingxi_gpu_run
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" .gpu

nvidia-smi -L 2>/dev/null
$PY -c 'import torch, tokenizers; print("torch", torch.__version__, "tokenizers", tokenizers.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))'

# The default recipe with a batch sized for the GPU.
$PY -c '
import json, sys
from dataclasses import asdict, replace
from assistant.engine.train.loop import TrainConfig
cfg = TrainConfig.from_dict(json.load(open(sys.argv[3]))) if sys.argv[3] else TrainConfig()
json.dump(asdict(replace(cfg, batch_tokens=int(sys.argv[2]))), open(sys.argv[1], "w"), indent=2)
' .gpu/train_config.json "$BATCH_TOKENS" "$BASE_CONFIG"
rm -rf "$RUN"
$PY -m assistant.engine train --data .gpu/data.pt --config .gpu/train_config.json --device "$DEVICE" \
    --minutes "$MINUTES" --out "$RUN" > "$OUT/train_summary.json" 2> "$OUT/train.log" || echo "TRAIN FAILED rc=$?"
head -2 "$OUT/train.log"; grep "^drills alone" "$OUT/train.log"; tail -3 "$OUT/train.log"
$PY -c '
import json, sys
r = json.load(open(sys.argv[1] + "/train_report.json"))
print({k: r[k] for k in ("steps", "epochs", "stopped_by", "device", "precision", "train_seconds", "final_loss", "drill_phase")})
print("seconds a step:", round(r["train_seconds"] / max(1, r["steps"]), 4))
' "$RUN"

# The engine on CUDA against the engine on the CPU, on the model just trained (fp32 weights on both).
$PY -c '
import sys
from assistant.engine.engine import LLMEngine
from assistant.engine.sampler import SamplingParams

prompts = ["明天下午三点提醒我给王总回电话", "What is on my schedule tomorrow?", "帮我把周会改到周五上午10点",
           "Cancel the dentist reminder", "你们支持七天无理由退货吗？", "Book lunch with Mia on Friday at noon"]
params = SamplingParams(max_tokens=48, temperature=0.0)
single = {}
for device in ("cpu", sys.argv[2]):
    with LLMEngine(sys.argv[1], device=device, max_batch=8) as eng:
        ids = [eng.tokenizer.encode_chat([{"role": "user", "content": p}]) for p in prompts]
        single[device] = [list(eng.generate(i, params).token_ids) for i in ids]
        handles = [eng.submit(i, params) for i in ids]
        batched = [[t for out in h for t in out.token_ids] for h in handles]
        print(device, "batched == one at a time:", batched == single[device])
        print(device, repr(eng.tokenizer.decode(single[device][0])))
print(sys.argv[2], "== cpu (greedy, 48 tokens, 6 prompts):", single[sys.argv[2]] == single["cpu"],
      [a == b for a, b in zip(single[sys.argv[2]], single["cpu"])])
' "$RUN" "$DEVICE"

tar cf - -C "$RUN" . | split -b 15M - "$OUT/run.tar.part-"
ls -la "$OUT"
