# The README's two commands: `make demo` and `make test`. Both create the environment if missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= erasekit-demo
# torch is pinned through constraints.txt: an unpinned torch pulls gigabytes of CUDA wheels.
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install demo test bench bench-features bench-concepts bench-sisa clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/erasekit demo --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/unlearning_mnist.py

bench-features: $(STAMP)
	$(BIN)/python benchmarks/features.py

bench-concepts: $(STAMP)
	$(BIN)/python benchmarks/concepts.py

bench-sisa: $(STAMP)
	$(BIN)/python benchmarks/sisa_mnist.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
