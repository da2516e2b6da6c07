# Seminote Edge. `make demo` runs the main job, `make test` runs the checks and tests.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Debian packages: the node needs libopus0 (opuslib); the tests also start redis-server and
# postgresql (the cloud sink's second database) and drive chromium. scripts/apt.sh installs the missing ones.
APT_RUN  := libopus0
APT_TEST := libopus0 redis-server chromium postgresql

.PHONY: demo test lint proto cluster bench bench-latency bench-accuracy bench-routing bench-durability clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	PYTHON=$(PYTHON) ./scripts/bootstrap.sh
	touch $(STAMP)

demo: $(STAMP)
	./scripts/apt.sh $(APT_RUN)
	$(BIN)/edge-client demo

test: $(STAMP)
	./scripts/apt.sh $(APT_TEST)
	./scripts/test.sh

lint: $(STAMP)
	./scripts/lint.sh

cluster: $(STAMP)
	./scripts/apt.sh $(APT_RUN) redis-server
	./scripts/cluster.sh

proto: $(STAMP)
	PYTHON=$(BIN)/python ./scripts/gen_proto.sh

bench: bench-latency bench-accuracy bench-routing bench-durability

bench-routing: $(STAMP)
	$(BIN)/python -m loadtests.routing_sim

bench-accuracy: $(STAMP)
	$(BIN)/python -m loadtests.accuracy

bench-durability: $(STAMP)
	./scripts/apt.sh redis-server
	$(BIN)/python -m loadtests.durability

bench-latency: $(STAMP)
	$(BIN)/python -m loadtests.latency

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
