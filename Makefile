# The README's two commands, on a fresh machine:
#   make demo   the ingester on embedded defaults (local Kafka, simulator, decoded records)
#   make test   ruff, mypy and the whole test suite against a real local Kafka broker
# Both bootstrap .venv (re-installed only when pyproject.toml changes) and fetch the Kafka
# jars once (see docs/local-kafka.md). `make test` also installs promtool and helm if missing.

VENV_BIN := .venv/bin

.PHONY: demo test lint unit bootstrap tools kafka-jars

demo: kafka-jars
	$(VENV_BIN)/sportrix-ingester demo

test: tools kafka-jars
	scripts/check all

lint: bootstrap
	scripts/check lint

unit: bootstrap
	scripts/check unit

bootstrap:
	@scripts/bootstrap

tools:
	@scripts/install-tools

kafka-jars: bootstrap
	@$(VENV_BIN)/python -m ingester.localkafka fetch
