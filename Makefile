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

.PHONY: demo test lint proto cluster bench bench-latency bench-accuracy bench-routing bench-durability bench-capacity train-notes clean

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

bench: bench-latency bench-accuracy bench-routing bench-durability bench-capacity

bench-routing: $(STAMP)
	$(BIN)/python -m loadtests.routing_sim

bench-accuracy: $(STAMP)
	$(BIN)/python -m loadtests.accuracy

bench-durability: $(STAMP)
	./scripts/apt.sh redis-server
	$(BIN)/python -m loadtests.durability

bench-latency: $(STAMP)
	$(BIN)/python -m loadtests.latency

# sessions held by ours and by the echo floor (one run, 3 repeats, ~3.5 min); JSON line + plot
bench-capacity: $(STAMP)
	./scripts/apt.sh $(APT_RUN)
	$(BIN)/python -m loadtests.capacity --repeats 3 --plot docs/capacity.png

# Re-make edge_server/dsp/models/notenet.npz from self-rendered audio (not part of CI: ~1 h on
# 2 cores; needs the soundfonts below and PyTorch in a separate venv, see the model's README).
TRAIN_VENV ?= /tmp/seminote-train
train-notes: $(STAMP)
	./scripts/apt.sh fluidsynth timgm6mb-soundfont musescore-general-soundfont-small csound-soundfont
	[ -x $(TRAIN_VENV)/bin/python ] || $(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install -q torch==2.13.0 mido numpy pyfftw
	$(TRAIN_VENV)/bin/python -m training.render --out training/data --minutes 150
	$(BIN)/python -m training.features --data training/data --out training/feats
	PYTHONPATH=. $(TRAIN_VENV)/bin/python -m training.train --data training/data --feats training/feats --epochs 14 --lr 3e-3
	$(BIN)/python -m training.tune --data training/data --feats training/feats
	$(BIN)/python -m training.tune_refined --data training/data

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
