# The README's two commands: `make demo` and `make test`. Both create the environment if missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= erasekit-demo
# torch is pinned through constraints.txt: an unpinned torch pulls gigabytes of CUDA wheels.
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install demo test lint format bench bench-evidence bench-erase bench-gpu bench-tables bench-features bench-concepts bench-sisa bench-cli bench-ledger bench-generative bench-generative-tuning bench-testbed clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/erasekit demo --out $(OUT)

# lint (ruff), format check (ruff), types (mypy on the modules listed in pyproject.toml), then every test
test: lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/unlearning_mnist.py

bench-evidence: $(STAMP)
	$(BIN)/python benchmarks/unlearning_evidence.py

bench-gpu: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py

bench-erase: $(STAMP)
	$(BIN)/python benchmarks/erase_speed.py

bench-tables: $(STAMP)
	$(BIN)/python benchmarks/selection_tables.py

bench-features: $(STAMP)
	$(BIN)/python benchmarks/features.py

bench-concepts: $(STAMP)
	$(BIN)/python benchmarks/concepts.py

bench-sisa: $(STAMP)
	$(BIN)/python benchmarks/sisa_mnist.py

bench-cli: $(STAMP)
	$(BIN)/python benchmarks/cli_startup.py

bench-ledger: $(STAMP)
	$(BIN)/python benchmarks/ledger_load.py

bench-generative: $(STAMP)
	$(BIN)/python benchmarks/generative_erasure.py

bench-generative-tuning: $(STAMP)
	$(BIN)/python benchmarks/generative_tuning.py --group sweep
	$(BIN)/python benchmarks/generative_tuning.py --group followup
	$(BIN)/python benchmarks/generative_tuning.py --group refine
	$(BIN)/python benchmarks/generative_tuning.py --group styled

bench-testbed: $(STAMP)
	$(BIN)/python benchmarks/testbed_quality.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
