# The README's two commands: `make demo` (main job on the synthetic flowers) and `make test`.
# Both create .venv and install everything on a fresh machine.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TORCH   ?= torch==2.13.0

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, exactly: any looser spec resolved on its own pulls a multi-GB CUDA build here.
	$(BIN)/pip install -q "$(TORCH)"
	# [all] = everything a user runs, [dev] = the test and lint tools.
	$(BIN)/pip install -q -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/t2igan demo --out runs/demo

# The browser test needs Debian's chromium: .ci/ensure-chromium installs it (apt-get, as root) or says what to install.
test: $(STAMP)
	@.ci/ensure-chromium
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) runs .pytest_cache
