# Two commands on a fresh machine: `make run` (the bridge) and `make test` (checks + tests).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint venv clean system-deps

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch from this machine's disk; a plain `torch` could pull a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/vadbridge run $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy bridge model training

# mosquitto and openssl from Debian, installed if missing (the MQTT and TLS tests use them).
system-deps:
	sh .ci/system-deps.sh

test: system-deps lint
	$(VENV)/bin/pytest -q -n 2 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
