# The README's two commands, on a fresh machine:
#   make demo   the ingester on embedded defaults (local Kafka, simulator, decoded records)
#   make test   ruff, mypy and the whole test suite against a real local Kafka broker
# Both bootstrap .venv from the lock (uv.lock; re-installed only when it or pyproject.toml
# changes): the demo with the runtime dependencies only, the tests with the dev tools too.
# Both fetch the Kafka jars once (see docs/local-kafka.md). Both install the devkit (devkit/:
# simulator, bench, demo, local Kafka) beside the daemon. `make test` also installs
# promtool, tmux and helm if missing.
#   make lock   re-resolve uv.lock after editing pyproject.toml (docs/dependencies.md)

VENV_BIN := .venv/bin
# scripts/bootstrap's mode: the demo needs no test or lint tools.
BOOTSTRAP_MODE := dev
demo: BOOTSTRAP_MODE := runtime
# Extra arguments for `sportrix-ingester demo`, e.g. make demo DEMO_ARGS="--soccer 5".
DEMO_ARGS :=

.PHONY: demo test lint unit prepare bootstrap tools kafka-jars lock

demo: prepare
	$(VENV_BIN)/sportrix-ingester demo $(DEMO_ARGS)

test: tools prepare
	scripts/check all

lint: bootstrap
	scripts/check lint

unit: bootstrap
	scripts/check unit

lock:
	scripts/lock

# The venv and the Kafka jars side by side: the fetch needs only Python's standard library,
# so it runs on python3 from the source tree (devkit/) while .venv is being made.
prepare:
	@PYTHONPATH=devkit python3 -m sportrix_devkit.localkafka fetch & jars=$$!; \
	scripts/bootstrap $(BOOTSTRAP_MODE); venv=$$?; \
	wait $$jars; jars=$$?; \
	exit $$(( venv || jars ))

bootstrap:
	@scripts/bootstrap $(BOOTSTRAP_MODE)

tools:
	@scripts/install-tools

kafka-jars:
	@PYTHONPATH=devkit python3 -m sportrix_devkit.localkafka fetch
