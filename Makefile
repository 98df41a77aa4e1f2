# singalign: `make demo` and `make test` install everything they need (idempotent).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install system-deps demo test bench lint format lm-default kenlm recipe-synthetic

install: system-deps $(STAMP) kenlm

# Debian packages listed in deps/apt.txt; apt runs only when one is missing.
system-deps:
	@missing=$$(grep -v '^\s*#' deps/apt.txt | grep -v '^\s*$$' | while read -r p; do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "ok installed" || echo "$$p"; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The virtual environment, with every version fixed by constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

# KenLM's lmplz and build_binary, built once from the kenlm sdist into .venv/bin.
kenlm: $(VENV)/bin/lmplz
$(VENV)/bin/lmplz: | $(STAMP)
	bash lm/build_kenlm.sh $(VENV)

demo: install
	$(PY) -m singalign.demo --out demo_out

test: install
	$(PY) -m pytest -q tests

bench: install
	$(PY) bench/run.py

lint: install
	$(VENV)/bin/ruff check singalign recipes tests bench lm
	$(VENV)/bin/ruff format --check singalign recipes tests bench lm

format: install
	$(VENV)/bin/ruff format singalign recipes tests bench lm
	$(VENV)/bin/ruff check --fix singalign recipes tests bench lm

# The default English LM (5-gram over the public-domain text's training portion) into models/lm_default.
lm-default: install
	bash lm/build_default.sh models/lm_default

# The whole recipe chain on synthetic corpora (a fixed budget, resumable; README: its time on 2 cores).
recipe-synthetic: install
	bash recipes/run_synthetic.sh
