# RecSite: two commands do all set-up — `make demo` and `make test`.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
WORKERS ?= 4
PG_URL ?= postgres://postgres@127.0.0.1:5432/postgres
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test test-fast test-real serve worker lint format bench clean

$(BIN)/.installed: requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py train --all
	$(BIN)/python manage.py demo_visits
	$(BIN)/python manage.py demo_admin --base-url http://127.0.0.1:$(PORT)
	$(BIN)/daphne -b 127.0.0.1 -p $(PORT) recsite.asgi:application

# Import contracts (pyproject.toml [tool.importlinter]) first, then the whole suite twice: on the embedded defaults (SQLite, local-memory cache, eager Celery), then again on
# PostgreSQL + Redis (cache, broker, channel layer) when they answer; tests marked `realservices` run only then.
test: install
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not realservices"
	@if $(BIN)/python scripts/services_up.py "$(PG_URL)" "$(REDIS_TEST_URL)"; then \
		DATABASE_URL="$(PG_URL)" REDIS_URL="$(REDIS_TEST_URL)" $(BIN)/python -m pytest -q -p no:cacheprovider; \
	else \
		echo "SKIPPED real-service tests: PostgreSQL ($(PG_URL)) or Redis ($(REDIS_TEST_URL)) is not reachable"; \
	fi

test-real: install
	DATABASE_URL="$(PG_URL)" REDIS_URL="$(REDIS_TEST_URL)" $(BIN)/python -m pytest -q

# Production-grade server on the environment's database and Redis (set DATABASE_URL / REDIS_URL).
serve: install
	DJANGO_SETTINGS_MODULE=recsite.settings.serve $(BIN)/python manage.py migrate --noinput
	DJANGO_SETTINGS_MODULE=recsite.settings.serve $(BIN)/python manage.py collectstatic --noinput -v 0
	DJANGO_SETTINGS_MODULE=recsite.settings.serve $(BIN)/gunicorn recsite.asgi:application \
		-k uvicorn.workers.UvicornWorker -w $(WORKERS) -b 127.0.0.1:$(PORT) --log-level warning

worker: install
	$(BIN)/celery -A recsite worker -Q default,training -l info

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Reproduces every figure in docs/BENCHMARKS.md (long: tens of minutes).
bench: install
	@for s in benchmarks/bench_*.py; do echo "== $$s"; $(BIN)/python $$s || exit 1; done
	$(BIN)/python scripts/benchmarks_merge.py

clean:
	rm -rf $(VENV) db.sqlite3 media staticfiles
