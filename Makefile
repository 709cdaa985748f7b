# The two commands of the README, and a few more. Each creates the virtual environment it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PROFILE ?= default

.PHONY: help venv repro test test-fast profile check benchmark backbone diff seeds slurm clean-venv
help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)  ## create .venv with the pinned packages (once)

repro: $(STAMP)  ## run the whole pipeline: dvc repro (params validated first)
	$(BIN)/python -m gdl.params check
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc repro

test: $(STAMP)  ## run every test (end-to-end ones on the smoke profile, the Slurm one on a local cluster)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q -ra; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

test-fast: $(STAMP)  ## the tests that take seconds (no dvc repro, no Slurm)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q -m "not slow and not slurm"

profile: $(STAMP)  ## write a profile into params.yaml: make profile PROFILE=smoke|default|book
	$(BIN)/python -m gdl.params use $(PROFILE)

check: $(STAMP)  ## validate params.yaml
	$(BIN)/python -m gdl.params check

benchmark: $(STAMP)  ## time every stage of a default dvc repro in a temp copy, and a no-op repro
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python scripts/benchmark.py

backbone: $(STAMP)  ## retrain a frozen FID/KID ruler on purpose: make backbone DATASET=digits|shapes (then git commit)
	@test -n "$(DATASET)" || { echo "usage: make backbone DATASET=<dataset>"; exit 2; }
	PATH=$(CURDIR)/$(BIN):$$PATH dvc repro --single-item preprocess@$(DATASET)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m stages.feature_extractor $(DATASET)
	PATH=$(CURDIR)/$(BIN):$$PATH dvc commit --force feature_extractor@$(DATASET)
	@echo "backbones/$(DATASET).weights.h5 retrained: every FID/KID on $(DATASET) changes ruler; commit it with git"

diff: $(STAMP)  ## which metric changes are beyond noise: make diff [REV=HEAD~1] [MD=1]
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python scripts/metrics_diff.py $(or $(REV),HEAD~1) $(if $(MD),--md)

seeds: $(STAMP)  ## spread across training seeds: make seeds MODEL=vae SEEDS="1 2 3" -> metrics/seeds/vae.json
	@test -n "$(MODEL)" -a -n "$(SEEDS)" || { echo 'usage: make seeds MODEL=vae SEEDS="1 2 3"'; exit 2; }
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python scripts/seeds.py $(MODEL) --seeds $(SEEDS)

slurm:  ## start the local one-node Slurm cluster (root; installs slurm-wlm and munge)
	bash scripts/slurm_cluster.sh start
