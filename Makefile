# The two commands in the README: `make demo` and `make test`. Both set up .venv first (quick when done).
.PHONY: setup demo test lint schemas
setup:
	@bash scripts/bootstrap.sh
demo: setup
	@bash scripts/demo.sh
test: setup
	@bash scripts/test.sh
lint: setup
	.venv/bin/ruff check .
schemas: setup
	.venv/bin/python -m schemas.jsonschema
