# rtcmatrix: `make run` and `make test` install everything they need on a fresh Debian 12 (as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)
# Browsers, the User-mode Linux router (real netem where the host kernel has none), audio tools.
# pulseaudio: a private audio server per browser (virtual mics and speakers); webkit2gtk-driver + xvfb: WebKitGTK.
APT_PACKAGES := chromium firefox-esr user-mode-linux busybox-static espeak-ng sox iproute2 procps python3-venv \
	pulseaudio pulseaudio-utils webkit2gtk-driver xvfb xauth tcpdump \
	kamailio kamailio-websocket-modules rtpengine-daemon baresip nodejs
ARGS ?=

WEB := harness/web
WEB_STAMP := $(WEB)/node_modules/.installed-$(shell cat $(WEB)/package-lock.json | md5sum | cut -c1-8)

.PHONY: setup apt venv web run test test-fast test-nightly test-lab bench bench-matrix sweep clean

setup: apt venv web

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  [ "$$(id -u)" = 0 ] || { echo "error: installing packages needs root (run make as root)"; exit 1; }; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	rm -f $(VENV)/.installed-*
	touch $@

# The SDKs under test, pinned in package-lock.json, from npm; JsSIP ships no browser build, so
# esbuild bundles its lib/ unmodified. --ignore-scripts: a plivo dependency's install script
# downloads from GitHub, which nothing here needs.
web: $(WEB_STAMP)

$(WEB_STAMP): $(WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm is missing (Debian: apt-get install npm; it comes with NodeSource's nodejs)"; exit 1; }
	cd $(WEB) && npm ci --ignore-scripts --no-audit --no-fund && npm run build
	touch $@

run: setup
	$(BIN)/rtcmatrix run $(ARGS)

# Everything: unit tests, the real lab (UML netem here), real browsers, the real far end.
test: setup
	$(BIN)/python -m pytest tests -m "not nightly" $(ARGS)

# Every row on Chromium and Firefox under three impaired profiles of the nightly matrix (about 10 minutes).
test-nightly: setup
	$(BIN)/python -m pytest tests -m nightly $(ARGS)

# Unit tests only: no root, no lab, no browser; seconds.
test-fast: venv
	$(BIN)/python -m pytest tests -m "not slow" $(ARGS)

bench: setup
	$(BIN)/python bench/link_accuracy.py $(ARGS)
	$(BIN)/python bench/engine_startup.py
	$(BIN)/python bench/sampler_overhead.py

# The default matrix at 1 and 2 workers (about 25 minutes here); narrow it with ARGS="--scenario ...".
bench-matrix: setup
	$(BIN)/python bench/matrix_time.py $(ARGS)

sweep: venv
	$(BIN)/rtcmatrix sweep

clean:
	rm -rf $(VENV) reports/out .pytest_cache
