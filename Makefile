# shared-court: the two quick-start commands are `make demo` and `make test`.
# Both work on a fresh Debian machine with Python 3.11 as root (or with sudo):
# they install the Debian packages they need, create .venv and install the project.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8080

# Debian packages: what running needs (PyAudio builds against PortAudio), and what the suite needs
# (Chromium for browser tests, with a CJK font so that screenshots show the Chinese pages, PostgreSQL for the storage suite, coturn for relayed media, ffmpeg
# to check recordings, Xvfb/PulseAudio/ALSA plugins for the station client, iproute2 for netns and
# `tc tbf`, nftables for random loss in the fault suite, zbar-tools to read the invitation QR
# codes the pages show, redis-server for the cluster tests, haproxy as the load balancer in front
# of the cluster tests' nodes).
DEB_RUN  := portaudio19-dev libtk8.6
DEB_TEST := $(DEB_RUN) chromium fonts-wqy-microhei postgresql coturn ffmpeg xvfb pulseaudio pulseaudio-utils libasound2-plugins alsa-utils iproute2 nftables zbar-tools redis-server haproxy

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Sealed hearing documents are printed as Chinese PDFs (recordings/document_pdf.py): the server
# embeds a CJK font; the suite reads the PDFs back with poppler-utils (pdftotext, pdfimages).
DEB_RUN  += fonts-wqy-microhei
DEB_TEST += poppler-utils

# Janus (C WebRTC server, VideoRoom plugin): the peer SFU that bench/janus_peer.py (and its smoke
# test in the suite) measures ours against (docs/benchmarks.md, issue 18.1). The bench starts its
# own instance with a private config in a network namespace; on a systemd machine disable the
# package's own service. Not needed to run a court.
DEB_TEST += janus

.PHONY: demo test lint typecheck pytest serve deb-run deb-test venv clean help

help:
	@echo "make demo   - install, migrate var/shared-court.db, seed a demo court, serve on http://127.0.0.1:$(PORT)"
	@echo "make test   - install everything incl. test tools, then lint, type-check and run the whole suite"

define deb_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deb-run:
	$(call deb_install,$(DEB_RUN))

deb-test:
	$(call deb_install,$(DEB_TEST))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[station,test]'
	touch $@

venv: deb-run $(VENV)/.installed

demo: deb-run $(VENV)/.installed
	$(BIN)/shared-court demo --port $(PORT)

serve: deb-run $(VENV)/.installed
	$(BIN)/shared-court serve

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

pytest: $(VENV)/.installed
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: deb-test $(VENV)/.installed lint typecheck pytest

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
