# One command each: `make run` serves the API locally, `make test` runs every test, `make bench`
# measures every function (a benchmark, not a test: not part of `make test`).
# Nothing is assumed installed but cargo and python3: Python tools go into .venv.

VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < infra/requirements.txt | cut -d' ' -f1)
# checkov has a venv of its own: its pins conflict with aws-sam-cli's (infra/requirements-checkov.txt).
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cksum < infra/requirements-checkov.txt | cut -d' ' -f1)

.PHONY: run sam-local test test-build test-checkov test-unit test-handlers test-e2e test-sam test-deploy lint build sam-image bench browser

# The function binaries, as template.yaml names them (Metadata.BuildProperties.Binary).
BINARIES := $(shell sed -n 's/^ *Binary: *//p' template.yaml)
# Where cargo puts binaries: .cargo/config.toml builds for the host's target by name.
HOST_TARGET_DIR := target/$(shell rustc -vV | sed -n 's/^host: //p')
ARM64_TARGET := aarch64-unknown-linux-gnu
# `make bench ONLY=me,health` measures only those (beside the floor); register and login are
# built anyway, since the bench gets its access token through them, and create-api-key, through
# which it gets the API key of its key-authenticated request (list-jobs+key). fogctl makes the bench user
# an administrator; with ONLY, routes whose seed functions (mint, stake, submit-job,
# create-proposal) are not built keep the fixtures' placeholder ids.
ONLY ?=
comma := ,
BENCH_BINARIES := $(if $(ONLY),$(sort $(subst $(comma), ,$(ONLY)) register login create-api-key),$(BINARIES)) floor
# More harness options, e.g. BENCH_ARGS="--cold-runs 11 --warm-invocations 500".
BENCH_ARGS ?=

$(STAMP): infra/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

$(CHECKOV_STAMP): infra/requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-checkov.txt
	rm -f $(CHECKOV_VENV)/.installed-*
	touch $@

build:
	cargo build --workspace --quiet

## Serve every function on http://127.0.0.1:3000 with a local DynamoDB on 127.0.0.1:8000; other
## ports with RUN_ARGS="--port 3001 --dynamodb-port 8001". Ctrl-C, SIGTERM and SIGHUP stop it all.
## While it serves, .local/stack.json says where it is; fogctl reads it.
RUN_ARGS ?=
run: $(STAMP) build
	$(PYTHON) infra/local_stack.py run $(RUN_ARGS)

## The same API in the Lambda containers SAM users run: `sam local start-api` on
## http://127.0.0.1:3000, functions built for this host (debug), a local DynamoDB they reach.
sam-local: $(STAMP) build
	$(PYTHON) infra/sam_local.py start-api $(RUN_ARGS)

## The Lambda runtime image `sam local` runs the functions in, made from local packages.
sam-image: $(STAMP)
	$(PYTHON) infra/sam_image.py

## Everything: lint, checkov, unit tests, in-process handler tests, end-to-end tests over HTTP,
## SAM local, and the deploy path checked offline. What waits runs beside what computes: the
## Python tools and the browser install while cargo compiles every test and function once; the
## handler tests (which wait on their local DynamoDB, one request at a time) run beside SAM local
## (which waits on Docker), each with a DynamoDB server of its own. The end-to-end tests then run
## alone. Side by side, each target's output is printed whole when it ends.
test:
	$(MAKE) --no-print-directory -j4 --output-sync=target $(STAMP) $(CHECKOV_STAMP) browser test-build
	$(MAKE) --no-print-directory lint test-checkov test-unit
	$(MAKE) --no-print-directory -j2 --output-sync=target test-handlers test-sam
	$(MAKE) --no-print-directory test-e2e test-deploy

## Every test binary and every function, compiled once for the stages that run them.
test-build:
	cargo test --workspace --no-run --quiet $(addprefix --exclude ,$(BINARIES))
	cargo build --workspace --quiet

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings

## checkov's CloudFormation checks on template.yaml: zero failed. A check that does not apply is
## skipped in the resource's Metadata with its reason. Offline and deterministic: no platform
## download (--skip-download, BC_SKIP_MAPPING), no update check, only the pinned version's checks.
test-checkov: $(CHECKOV_STAMP)
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --file template.yaml \
	  --framework cloudformation --skip-download --quiet --compact

## The functions' binaries are a few lines each with no test of their own: their test harnesses,
## 40 links of the whole library, are not built.
test-unit:
	cargo test --workspace --lib --bins --quiet $(addprefix --exclude ,$(BINARIES))

test-handlers: $(STAMP)
	$(PYTHON) infra/local_stack.py with-dynamodb -- cargo test --workspace --test '*' --quiet

## End-to-end tests over HTTP, in this process, or in E2E_WORKERS processes (pytest-xdist), each
## file in one process with stacks of its own. 3 took 448-505 s where one takes 656, but in two
## clean-clone runs of 3 the same two requests (GET /api/auth/me) hung 60 s in cargo-lambda's
## emulator, which no run in one process has shown (docs/testing.md): one, until that is understood.
E2E_WORKERS ?= 0
test-e2e: $(STAMP) build browser
	$(PYTHON) -m pytest tests -q --ignore=tests/sam -n $(E2E_WORKERS) --dist loadfile

## The browser tests/test_docs_browser.py drives: Debian's chromium and chromium-driver, installed
## by package name where either is missing and apt-get can install (as root). Otherwise one line
## saying so; the test then skips, or fails under CI=true.
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "browser: installing chromium and chromium-driver (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
	    || echo "browser: apt-get could not install them: tests/test_docs_browser.py will skip (fail under CI=true)"; \
	else \
	  echo "browser: $(CHROMIUM) or $(CHROMEDRIVER) is missing, and apt-get cannot install them here (not root): tests/test_docs_browser.py will skip (fail under CI=true)"; \
	fi

## sam local invoke (every events/ fixture) and sam local start-api, in Docker. Without a Docker
## engine: one line saying so, and a pass; under CI=true: a failure.
test-sam: $(STAMP) build
	@if reason=$$($(PYTHON) infra/sam_local.py docker-check); then \
	  $(PYTHON) -m pytest tests/sam -q; \
	elif [ "$$CI" = true ]; then \
	  echo "SAM-local tests FAILED: $$reason, and CI=true requires a Docker engine" >&2; exit 1; \
	else \
	  echo "SAM-local tests skipped: $$reason. Start a Docker engine to run them."; \
	fi

## The deploy path, offline: cfn-lint and `sam validate --lint` on template.yaml, then `sam build`
## of one function through cargo-lambda as a deploy runs it, for this host's architecture (the
## arm64 Rust target is not installed here). It is a debug build (SAM_BUILD_MODE=debug) with
## cargo as the compiler: the workspace's build for the host (.cargo/config.toml) already holds
## it, so nothing compiles again; a release build is `make bench`'s and a deploy's.
SAM_BUILD_CHECK_DIR := $(shell mktemp -d -u /tmp/fog-sam-build-XXXXXX)
test-deploy: $(STAMP) build
	$(VENV)/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 SAM_BUILD_MODE=debug CARGO_LAMBDA_COMPILER=cargo \
	  $(VENV)/bin/sam build RootFunction --no-cached \
	  --parameter-overrides "Architecture=$$(uname -m | sed 's/aarch64/arm64/') MailFrom=no-reply@example.com AppBaseUrl=https://app.example.com" \
	  --build-dir $(SAM_BUILD_CHECK_DIR)
	test -x $(SAM_BUILD_CHECK_DIR)/RootFunction/bootstrap
	rm -rf $(SAM_BUILD_CHECK_DIR)

## Cold start, warm latency, peak memory, size and DynamoDB round trips of every function, with
## release binaries of the deploy profile, against a fresh local DynamoDB. Writes bench/results/.
## arm64 sizes too when the aarch64 target is installed (cargo lambda cross-compiles with zig).
bench: $(STAMP)
	nice -n 10 cargo build --release $(addprefix --bin ,$(BENCH_BINARIES)) --bin fogctl
	nice -n 10 cargo build --profile harness -p bench
	@if rustup target list --installed 2>/dev/null | grep -qx $(ARM64_TARGET); then \
		$(VENV)/bin/pip install --quiet --disable-pip-version-check ziglang && \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" nice -n 10 cargo lambda build --release --arm64 \
			$(addprefix --bin ,$(BENCH_BINARIES)) && \
		echo "--arm64 target/lambda" > target/bench-arm64-args; \
	else \
		echo "arm64: the $(ARM64_TARGET) target is not installed; sizes are for x86_64 only"; \
		rm -f target/bench-arm64-args; \
	fi
	$(PYTHON) infra/local_stack.py with-dynamodb --table fog-compute-bench -- \
		$(HOST_TARGET_DIR)/harness/bench --binaries $(HOST_TARGET_DIR)/release $$(cat target/bench-arm64-args 2>/dev/null) \
		$(if $(ONLY),--only $(ONLY)) $(BENCH_ARGS)
