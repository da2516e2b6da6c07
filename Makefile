# Seminote Edge. `make demo` runs the main job, `make test` runs the checks and tests.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint proto bench bench-latency bench-accuracy clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	PYTHON=$(PYTHON) ./scripts/bootstrap.sh
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edge-client demo

test: $(STAMP)
	./scripts/test.sh

lint: $(STAMP)
	./scripts/lint.sh

proto: $(STAMP)
	PYTHON=$(BIN)/python ./scripts/gen_proto.sh

bench: bench-latency bench-accuracy

bench-accuracy: $(STAMP)
	$(BIN)/python -m loadtests.accuracy

bench-latency: $(STAMP)
	$(BIN)/python -m loadtests.latency

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
