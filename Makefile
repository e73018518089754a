# Two commands on a fresh machine: `make run` (the bridge) and `make test` (checks + tests).
VENV ?= .venv
PY := $(VENV)/bin/python
BASE := $(VENV)/.installed-base
DEV := $(VENV)/.installed-dev
LINKS := $(VENV)/.linked
FILE_LIST := $(VENV)/.package-files
BROKER_PORT ?= 1883
# `make run` serves the control panel here (loopback only); `make run WEB=` leaves it off.
WEB ?= 127.0.0.1:8800
# The package's files: a new or removed one rebuilds the editable link tree (see `LINKS`).
PACKAGE_FILES := $(shell find bridge model training benchmarks config -type f \
	\( -name '*.py' -o -name '*.yaml' -o -name '*.npz' -o -name '*.json' -o -name py.typed \
	   -o -name '*.html' -o -name '*.js' -o -name '*.css' \) \
	-not -path '*/__pycache__/*' 2>/dev/null)
# setuptools is installed first, so the builds need no isolated environment of their own.
EDITABLE := --no-build-isolation --config-settings editable_mode=strict -e

.PHONY: run test lint venv clean system-deps broker FORCE

# The bridge alone: numpy, python-osc, aiomqtt, pyyaml (no torch: it runs on numpy), and aiohttp
# for the control panel `make run` serves (the `web` extra).
$(BASE): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 'setuptools>=77'
	$(PY) -m pip install -q $(EDITABLE) '.[web]'
	touch $(BASE)

# What the tests and training need on top.
$(DEV): $(BASE)
	# The CPU build of torch from this machine's disk; a plain `torch` could pull a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q $(EDITABLE) '.[train,dev]'
	touch $(DEV)

# The list of the package's files, rewritten only when a file is added or removed: the link
# tree's symlinks follow edits by themselves, so only a new or removed file needs a rebuild
# (and a rebuild while tests run, from a test's `make run`, would break their imports).
$(FILE_LIST): FORCE | $(BASE)
	@printf '%s\n' $(sort $(PACKAGE_FILES)) > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

FORCE:

# The package installed "strict" editable: a link tree under build/ that maps the design
# card's folders (bridge/ model/ training/ benchmarks/ config/) to their `vadbridge.*` names,
# exactly as the wheel lays them out, so tests and mypy see what users install.
$(LINKS): $(BASE) $(FILE_LIST)
	$(PY) -m pip install -q --no-deps $(EDITABLE) . >$(VENV)/links.log 2>&1 \
		|| { cat $(VENV)/links.log; exit 1; }
	touch $(LINKS)

venv: $(DEV) $(LINKS)

run: $(LINKS)
	$(VENV)/bin/vadbridge run $(if $(WEB),--web $(WEB)) $(ARGS)

lint: $(DEV) $(LINKS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy -p vadbridge

# mosquitto and openssl from Debian, installed if missing (the MQTT and TLS tests use them), and
# chromium with its driver (the control panel's browser tests).
system-deps:
	sh .ci/system-deps.sh

# A local MQTT broker for the quick start: Debian's mosquitto on 127.0.0.1:$(BROKER_PORT), in
# the background, unless something listens there already.
broker: system-deps
	sh .ci/broker.sh $(BROKER_PORT)

test: system-deps lint
	$(VENV)/bin/pytest -q -n 2 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
