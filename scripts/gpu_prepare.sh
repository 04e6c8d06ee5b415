#!/usr/bin/env bash
# Run HERE (not on the device) before `scripts/gpu_check.sh`: gathers what the GPU image lacks into two
# git-ignored folders that the device call carries (see the device tool's README):
#   .whl/  wheels for Python 3.12 of our dependencies missing from the image (pydantic, gguf, datasets,
#          bitsandbytes, trl, fastapi, uvicorn, sqlalchemy, ...), same versions as this venv;
#   .gpu/  SmolLM2-135M's config and tokenizer (the weights are 94+ MB, over the carry limit: the check
#          initialises the same architecture at random, which is what speed and memory depend on) and a
#          500-line NTREX English/Hausa slice (CC BY-SA 4.0, see ../shared/data/ntrex128/SOURCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
for p in /.whl/ /.gpu/; do grep -qx "$p" .git/info/exclude || echo "$p" >> .git/info/exclude; done
PY=.venv/bin/python
rm -rf .whl .gpu && mkdir -p .whl .gpu/smollm2-135m-config .gpu/ntrex
pkgs=""
# fastapi ... httpx: the serving stack, so the serve/ui/monitor unit tests import on the GPU too.
for name in pydantic pydantic_core annotated-types typing-inspection typing_extensions gguf datasets dill multiprocess \
    bitsandbytes trl fastapi starlette anyio annotated-doc opentelemetry-api uvicorn click h11 sqlalchemy alembic \
    mako markupsafe httpx httpcore certifi idna; do
  pkgs="$pkgs $name==$($PY -c "from importlib.metadata import version; print(version('$name'))")"
done
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl $pkgs
# Liger Kernel (pure Python over Triton, which the image has) for train.kernels=liger; not in our CPU venv.
$PY -m pip download -q --no-deps --only-binary=:all: -d .whl liger-kernel==0.8.5
cache=$($PY -c "
from tunesmith.models.load import resolve, local_directory
print(local_directory(resolve('smollm2-135m-instruct')))")
cp "$cache"/{config.json,generation_config.json,tokenizer.json,tokenizer_config.json,chat_template.jinja} \
  .gpu/smollm2-135m-config/
head -n 500 ../shared/data/ntrex128/newstest2019-src.eng.txt > .gpu/ntrex/newstest2019-src.eng.txt
head -n 500 ../shared/data/ntrex128/newstest2019-ref.hau.txt > .gpu/ntrex/newstest2019-ref.hau.txt
du -sh .whl .gpu
