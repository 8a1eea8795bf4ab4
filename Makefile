# The two commands in the README: `make demo` and `make test`. Both set up .venv first (quick when done).
.PHONY: setup demo test test-fast lint schemas lock
setup:
	@bash scripts/bootstrap.sh
demo: setup
	@bash scripts/demo.sh
test: setup
	@bash scripts/test.sh
# The fast tier (unit and small CLI tests, ~90 s on 2 quiet cores): run it after each change. `make test` is all (CI).
test-fast: setup
	@bash scripts/test.sh -m "not slow"
lint: setup
	.venv/bin/ruff check .
schemas: setup
	.venv/bin/python -m schemas.jsonschema
# Re-resolve pyproject.toml into requirements-lock.txt (after changing dependencies; commit the result).
# Not behind `setup`: setup refuses a stale lock. Pass uv options with ARGS="--upgrade-package NAME".
lock:
	@bash scripts/lock.sh $(ARGS)
