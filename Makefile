# One command each: `make run` serves the API locally, `make test` runs every test.
# Nothing is assumed installed but cargo and python3: Python tools go into .venv.

VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < infra/requirements.txt | cut -d' ' -f1)

.PHONY: run test test-unit test-handlers test-e2e lint build

$(STAMP): infra/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

build:
	cargo build --workspace --quiet

## Serve every function on http://127.0.0.1:3000 with a local DynamoDB on 127.0.0.1:8000.
run: $(STAMP) build
	$(PYTHON) infra/local_stack.py run

## Everything: lint, unit tests, in-process handler tests, end-to-end tests over HTTP.
test: lint test-unit test-handlers test-e2e

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings

test-unit:
	cargo test --workspace --lib --bins --quiet

test-handlers: $(STAMP)
	$(PYTHON) infra/local_stack.py with-dynamodb -- cargo test --workspace --test '*' --quiet

test-e2e: $(STAMP) build
	$(PYTHON) -m pytest tests -q
