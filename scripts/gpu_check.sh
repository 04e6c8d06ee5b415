#!/usr/bin/env bash
# GPU-only checks in one call on a lent device machine (see the device tool's README). First, here:
#   bash scripts/gpu_prepare.sh        # wheels the image lacks -> .whl/, SmolLM2 config + NTREX slice -> .gpu/
# then the device call:   run(command="bash scripts/gpu_check.sh", carry=[".whl", ".gpu"], timeout_s=570)
# (all sections take about 10 minutes on an H200: name fewer in SECTIONS to fit one call)
# Sections run in order of importance, each under its own time limit, each writing $OUT/<section>.txt:
#   env            nvidia-smi, versions, `tunesmith env`
#   method_memory  bench/method_memory.py: LoRA vs QLoRA NF4 / int8 vs full with AdamW / 8-bit / paged AdamW
#                  (speed and peak CUDA memory) on SmolLM2-135M's architecture at random init
#   step_timing    matmul peak (bf16, tf32) and one LoRA step in fp32 vs bf16 autocast
#   sft_vs_trl     bench/sft_vs_trl.py on the GPU (tunesmith's engine vs TRL's SFTTrainer), 4 and 32 examples
#                  per step
#   liger          the same at 32 examples per step with Liger Kernel in both tools (train.kernels=liger in
#                  ours, use_liger_kernel in TRL's)
#   compile        the same at 32 examples per step with tunesmith's blocks compiled (train.compile; Triton on
#                  CUDA: launch-bound steps are where it should pay most); TRL as documented
#   dpo_vs_trl     bench/dpo_vs_trl.py on the GPU (LoRA DPO vs TRL's DPOTrainer, HH-RLHF pairs from examples/)
#   pytest         the unit tests with CUDA visible
#   vllm           tests/integration/test_serve_vllm.py with vLLM's CUDA build, where the image has vllm
#                  (its wheel is too large to carry; skipped, saying so, where it is absent)
#   ddp            two-process data parallel through accelerate launch (machines with 2+ GPUs only)
# SECTIONS="pytest sft_vs_trl" BATCHES=32 bash scripts/gpu_check.sh runs only those (the model is built when needed).
# Record the output in docs/benchmarks.md.
set -uo pipefail
SECTIONS=${SECTIONS:-"env method_memory step_timing sft_vs_trl liger compile dpo_vs_trl pytest vllm ddp"}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    2>&1 | tail -2
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src
fi
PY=python3

want env && {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch, transformers, peft, accelerate; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'transformers', transformers.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__)"
  $PY -c "import bitsandbytes, trl, datasets; print('bitsandbytes', bitsandbytes.__version__, 'trl', trl.__version__,
'datasets', datasets.__version__)"
  timeout 60 $PY -m tunesmith.cli.main env
} 2>&1 | tee "$OUT/env.txt"

MODEL=/tmp/smollm2-random
timeout 120 $PY - <<'PY' 2>&1 | tail -3
import shutil, torch
from pathlib import Path
from transformers import AutoConfig, AutoModelForCausalLM
src = Path(".gpu/smollm2-135m-config")
torch.manual_seed(0)
model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(src), dtype=torch.float32)
model.save_pretrained("/tmp/smollm2-random")
for f in src.iterdir():
    if f.name != "config.json":
        shutil.copy(f, "/tmp/smollm2-random")
print("random SmolLM2-135M:", sum(p.numel() for p in model.parameters()), "parameters")
PY

want method_memory && timeout 240 $PY bench/method_memory.py --model $MODEL --ntrex .gpu/ntrex --steps 10 --batch-tokens 4096 2>&1 \
  | tee "$OUT/method_memory.txt"

want step_timing && timeout 90 $PY - <<'PY' 2>&1 | tee "$OUT/step_timing.txt"
import time, torch
from tunesmith.models.load import load_model
from tunesmith.adapters import lora
from tunesmith.config.schema import LoraMethod
from tunesmith.train.sft.loss import CausalLMLoss

def peak(dtype, n=8192, reps=10):
    a, b = torch.randn(n, n, device="cuda", dtype=dtype), torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12

print(f"matmul peak: bf16 {peak(torch.bfloat16):.0f} TFLOP/s, fp32 {peak(torch.float32):.0f} TFLOP/s (tf32 off)")
model, tok = load_model("/tmp/smollm2-random")
model.config.use_cache = False
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
    print(f"LoRA step, SmolLM2-135M random init, 8x512 tokens, {dtype}: "
          f"{5 * ids.numel() / (time.perf_counter() - t):,.0f} tokens/s, loss {float(loss):.3f}")
PY


want sft_vs_trl && for batch in ${BATCHES:-4 32}; do
  timeout 200 $PY bench/sft_vs_trl.py --model $MODEL --ntrex .gpu/ntrex --precision bf16 --steps 8 --reps 3 \
    --batch $batch 2>&1 | grep -v "^rep "
done | tee "$OUT/sft_vs_trl.txt"

want liger && timeout 150 $PY bench/sft_vs_trl.py --model $MODEL --ntrex .gpu/ntrex --precision bf16 --steps 8 --reps 2 \
  --batch 32 --liger 2>&1 | grep -v "^rep " | tee "$OUT/liger.txt"

want compile && timeout 200 $PY bench/sft_vs_trl.py --model $MODEL --ntrex .gpu/ntrex --precision bf16 --steps 8 \
  --reps 2 --batch 32 --compile 2>&1 | grep -v "^rep " | tee "$OUT/compile.txt"

want dpo_vs_trl && timeout 150 $PY bench/dpo_vs_trl.py --model $MODEL --precision bf16 --steps 8 --reps 2 2>&1 \
  | grep -v "^rep " | tee "$OUT/dpo_vs_trl.txt"

# -rfE names every failure and error; a module whose imports the image lacks is reported and the rest still run.
want pytest && timeout 150 $PY -m pytest tests/unit -q -rfE --continue-on-collection-errors -p no:warnings -p no:cacheprovider 2>&1 | tail -25 \
  | tee "$OUT/pytest.txt"

# The vLLM serving backend on CUDA: greedy answers equal the in-process engine's, the server under the openai
# client, a burst of 48 requests (the same tests make test-vllm runs on vLLM's CPU build).
if want vllm && $PY -c "import vllm" 2>/dev/null; then
  timeout 240 $PY -m pytest tests/integration/test_serve_vllm.py -q -rfE -p no:warnings -p no:cacheprovider \
    --override-ini "addopts=" 2>&1 | tail -8 | tee "$OUT/vllm.txt"
elif want vllm; then
  echo "vllm: skipped (vLLM is not installed on this image)" | tee "$OUT/vllm.txt"
fi

# Data parallel over the GPUs with the shipped accelerate config, when the machine has two or more: two
# processes with grad_accum=1 must log the losses one process logs with grad_accum=2 (as the CPU test checks).
GPUS=$(nvidia-smi -L 2>/dev/null | wc -l)
if want ddp && [ "$GPUS" -ge 2 ]; then
  timeout 200 $PY -m pytest tests/integration/test_distributed.py -q -p no:warnings -p no:cacheprovider \
    -k accelerate --override-ini "addopts=" 2>&1 | tail -5 | tee "$OUT/ddp.txt"
  echo "DDP (configs/accelerate/cpu-2proc.yaml, MULTI_GPU launcher) on a $GPUS-GPU machine" | tee -a "$OUT/ddp.txt"
else
  echo "ddp: skipped ($GPUS GPU(s); the DDP check needs two or more)"
fi
