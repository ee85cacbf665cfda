# The README's two commands, on a fresh machine:
#   make demo   the ingester on embedded defaults (local Kafka, simulator, decoded records)
#   make test   ruff, mypy and the whole test suite against a real local Kafka broker
# Both bootstrap .venv from the lock (uv.lock; re-installed only when it or pyproject.toml
# changes): the demo with the runtime dependencies only, the tests with the dev tools too.
# Both fetch the Kafka jars once (see docs/local-kafka.md). `make test` also installs
# promtool, tmux and helm if missing.
#   make lock   re-resolve uv.lock after editing pyproject.toml (docs/dependencies.md)

VENV_BIN := .venv/bin
# scripts/bootstrap's mode: the demo needs no test or lint tools.
BOOTSTRAP_MODE := dev
demo: BOOTSTRAP_MODE := runtime
# Extra arguments for `sportrix-ingester demo`, e.g. make demo DEMO_ARGS="--soccer 5".
DEMO_ARGS :=

.PHONY: demo test lint unit bootstrap tools kafka-jars lock

demo: kafka-jars
	$(VENV_BIN)/sportrix-ingester demo $(DEMO_ARGS)

test: tools kafka-jars
	scripts/check all

lint: bootstrap
	scripts/check lint

unit: bootstrap
	scripts/check unit

lock:
	scripts/lock

bootstrap:
	@scripts/bootstrap $(BOOTSTRAP_MODE)

tools:
	@scripts/install-tools

kafka-jars: bootstrap
	@$(VENV_BIN)/python -m ingester.localkafka fetch
