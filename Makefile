# Seminote Edge. `make demo` runs the main job, `make test` runs the checks and tests.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# system packages the tests need (installed by scripts/bootstrap.sh when missing)
APT_PACKAGES ?= redis-server libopus0 chromium

.PHONY: demo test lint proto cluster bench bench-latency bench-accuracy bench-routing clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	PYTHON=$(PYTHON) APT_PACKAGES="$(APT_PACKAGES)" ./scripts/bootstrap.sh
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edge-client demo

test: $(STAMP)
	./scripts/test.sh

lint: $(STAMP)
	./scripts/lint.sh

cluster: $(STAMP)
	./scripts/cluster.sh

proto: $(STAMP)
	PYTHON=$(BIN)/python ./scripts/gen_proto.sh

bench: bench-latency bench-accuracy bench-routing

bench-routing: $(STAMP)
	$(BIN)/python -m loadtests.routing_sim

bench-accuracy: $(STAMP)
	$(BIN)/python -m loadtests.accuracy

bench-latency: $(STAMP)
	$(BIN)/python -m loadtests.latency

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
