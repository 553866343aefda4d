# The README's two commands are `make serve` and `make test`. `make help` lists the rest.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FIXTURES := fixtures/homelive/influencers.jsonl fixtures/homelive/content.jsonl
PORT ?= 8000
export HF_HUB_OFFLINE := 1

.PHONY: help install serve test test-slow lint eval bench screenshots clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install: $(VENV)/.installed  ## create .venv and install the pinned requirements

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

serve: install  ## load the Homelive fixtures on first run, then serve the API on localhost:$(PORT) (dev mode: no keys)
	$(PY) -m matcher load --if-empty $(FIXTURES)
	$(PY) -m matcher serve --dev --port $(PORT)

test: install  ## run the test suite (real model, SQLite, FAISS and HTTP server), but the long runs
	$(PY) -m pytest -q -m "not slow"

test-slow: install  ## the long runs: real datasets, SIGKILL, fuzzing, several workers, the pages in Chromium (CI runs both)
	$(PY) -m pytest -q -m slow

screenshots: install  ## retake the README's screenshots of the pages (docs/*.png), in headless Chromium
	RELAIS_SCREENSHOTS=1 $(PY) -m pytest -q tests/test_planner_page.py tests/test_widget.py

lint: install  ## ruff over the code
	$(PY) -m pip install --quiet ruff && $(VENV)/bin/ruff check .

clean:  ## remove the virtualenv and the local data dir
	rm -rf $(VENV) data
