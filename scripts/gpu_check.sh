#!/usr/bin/env bash
# GPU-only checks, run in one call on a lent device machine (see the device tool's README):
#   device run: bash scripts/gpu_check.sh    (with wheels/ carried when the image lacks a dependency)
# Prints the environment, runs the test suite with CUDA visible (the engine then trains on the GPU in bf16),
# and times one LoRA step on the tiny model in fp32 and bf16. Record its output in docs/benchmarks.md.
# Status: written in the foundation session, which was not lent a GPU; it has not run on one yet.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
if [ -d wheels ]; then python -m pip install -q --no-index --find-links wheels -e . 2>&1 | tail -2; else
  python -m pip install -q --no-deps -e . 2>&1 | tail -2; fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.txt"
python -m tunesmith.cli.main env | tee "$OUT/env.txt"
python -m pytest -m "not slow" -q -p no:warnings 2>&1 | tail -5 | tee "$OUT/pytest.txt"
python - <<'PY' 2>&1 | tee "$OUT/step-timing.txt"
import tempfile, time, pathlib, torch
from tunesmith.models.tiny import build_tiny_causal_lm
from tunesmith.models.load import load_model
from tunesmith.adapters import lora
from tunesmith.config.schema import LoraMethod
from tunesmith.train.sft.loss import CausalLMLoss
d = build_tiny_causal_lm(pathlib.Path("tests/assets/tiny-tokenizer"), pathlib.Path(tempfile.mkdtemp()),
                         hidden_size=512, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=8)
model, tok = load_model(str(d))
model = lora.apply(model, LoraMethod(r=16)).cuda()
loss_fn = CausalLMLoss(model)
ids = torch.randint(0, len(tok), (8, 512), device="cuda")
batch = {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}
for dtype in (torch.float32, torch.bfloat16):
    for i in range(6):
        if i == 1:
            torch.cuda.synchronize(); t = time.perf_counter()
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is torch.bfloat16):
            loss, _ = loss_fn(batch)
        loss.backward()
    torch.cuda.synchronize()
    print(f"{dtype}: {5 * ids.numel() / (time.perf_counter() - t):,.0f} tokens/s, loss {float(loss):.3f}")
PY
