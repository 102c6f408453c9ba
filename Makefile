# MooVitamix ELT. `make help` lists the targets; every target bootstraps .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Airflow's own environment: Airflow 3 pins many packages (FastAPI among them), so it never shares .venv
AIRFLOW_VENV := .venv-airflow
AIRFLOW_BIN := $(AIRFLOW_VENV)/bin
export DBT_PROFILES_DIR ?= $(CURDIR)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

# uv installs the locks (the same pins pip would install, ~10x faster): one pinned release from
# PyPI, in .uv/<version>/ beside the venvs, shared by both; a new UV_VERSION installs beside the old.
UV_VERSION := 0.13.8
UV := .uv/$(UV_VERSION)/bin/uv

$(UV):
	$(PYTHON) -m pip install --quiet --root-user-action=ignore --target .uv/$(UV_VERSION) uv==$(UV_VERSION)

$(BIN)/.installed: requirements.lock pyproject.toml | $(UV)
	$(UV) venv --quiet --clear --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m recommender.kernels  # compiles co-listen's kernel into Numba's cache once
	touch $@

# The Spark engine's extra (dbt-spark, pyspark): installed when the engine is chosen in the
# environment (MOOVITAMIX_ENGINE=spark or WAREHOUSE__ENGINE=spark), or by `make spark-install`.
SPARK_CHOSEN := $(filter spark,$(MOOVITAMIX_ENGINE) $(WAREHOUSE__ENGINE))

.PHONY: install
install: $(BIN)/.installed $(if $(SPARK_CHOSEN),$(BIN)/.spark-installed) ## Create .venv with the pinned dependencies (and the Spark extra when MOOVITAMIX_ENGINE=spark)

$(BIN)/.spark-installed: requirements-spark.lock $(BIN)/.installed
	@command -v java >/dev/null || { echo "the Spark engine needs a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)"; exit 1; }
	$(UV) pip install --quiet --python $(BIN)/python -r requirements-spark.lock
	touch $@

.PHONY: spark-install
spark-install: $(BIN)/.spark-installed ## Install the Spark engine's extra into .venv (dbt-spark, pyspark; needs Java 17)

$(AIRFLOW_BIN)/.installed: orchestration/requirements-airflow.lock pyproject.toml | $(UV)
	$(UV) venv --quiet --clear --python $(PYTHON) $(AIRFLOW_VENV)
	$(UV) pip install --quiet --python $(AIRFLOW_BIN)/python -r orchestration/requirements-airflow.lock
	$(UV) pip install --quiet --python $(AIRFLOW_BIN)/python --no-deps -e .
	touch $@

.PHONY: airflow
airflow: $(AIRFLOW_BIN)/.installed ## Create .venv-airflow: Airflow 3 and the project, from orchestration/requirements-airflow.lock

.PHONY: api
api: install ## Serve the MooVitamix dev API in the foreground (USERS=, TRACKS=, DAY=, PORT=)
	$(BIN)/python -m dev_api --port $${PORT:-8000} --users $${USERS:-1000} --tracks $${TRACKS:-1000} --day $${DAY:-0}

.PHONY: extract
extract: install ## Load the API into the raw schema (starts the dev API when MOOVITAMIX_API_URL is unset)
	$(BIN)/python -m extract

.PHONY: elt
elt: install ## The nightly job: extract, load, privacy, dbt build, checks, training, scoring, publish data/analytics.duckdb (FULL=1 rebuilds everything)
	$(if $(FULL),NIGHTLY__FULL_REBUILD=true )$(BIN)/python -m nightly

.PHONY: status
status: install ## The last nightly runs and each source's freshness (works while a run is running)
	$(BIN)/python -m nightly.status

.PHONY: forget
forget: install ## Erase one user's personal data from raw history for good (USER_ID=, BY= who asked)
	@test -n "$(USER_ID)" || { echo "usage: make forget USER_ID=<id> [BY=<who asked>]"; exit 2; }
	$(BIN)/python -m nightly.privacy forget $(USER_ID) $(if $(BY),--requested-by "$(BY)")

.PHONY: shell
shell: install ## Read-only SQL shell on the analysts' file (the pinned DuckDB 1.x shell; `from fct_listens`)
	@$(BIN)/python -m nightly.shell

.PHONY: report
report: install ## Write the run report (durations, volumes, tests, model metrics, freshness) to data/report.html
	$(BIN)/python -m nightly.report

.PHONY: recommend
recommend: install ## Score every user with the champion into ml.recommendations (trains one first if none)
	$(BIN)/python -m recommender score

.PHONY: train
train: install ## Retrain the recommender: fit, evaluate on one holdout, promotion gate (weekly)
	$(BIN)/python -m recommender train

.PHONY: bench-reco
bench-reco: install ## Recommender at 100,000 dev API users, 10,000 tracks: every model, the ceiling, cold start
	$(BIN)/python -m benchmarks.reco_bench $(ARGS)

.PHONY: dbt
dbt: install ## Any dbt command on the configured warehouse, under the run lock (ARGS="test -s dim_users")
	$(BIN)/python -m core.dbt $(ARGS)

.PHONY: serve
serve: install ## Serve recommendations over data/analytics.duckdb on http://127.0.0.1:8001 (docs at /docs)
	$(BIN)/python -m serve

.PHONY: bench-spark
bench-spark: install spark-install ## The dbt layer on DuckDB and on Spark (local mode) at 100,000 users, side by side (ARGS=)
	$(BIN)/python -m benchmarks.spark_bench $(ARGS)

.PHONY: bench-reco-scale
bench-reco-scale: install ## Recommender at 1,000,000 users x 100,000 tracks: training, first, typical and quiet nights' scoring vs the floor
	$(BIN)/python -m benchmarks.reco_scale $(ARGS)

.PHONY: dbt-build
dbt-build: install ## dbt build alone, on the raw data already loaded (takes the run lock)
	$(BIN)/python -m core.dbt build

.PHONY: docs
docs: install ## Generate the dbt docs site into target/ (takes the run lock)
	$(BIN)/python -m core.dbt docs generate

.PHONY: docs-serve
docs-serve: docs ## Serve the dbt docs on http://127.0.0.1:8080
	$(BIN)/dbt docs serve --host 127.0.0.1 --port $${PORT:-8080}

.PHONY: airflow-standalone
airflow-standalone: airflow ## Airflow's UI on http://127.0.0.1:8080 with the DAGs of orchestration/dags (PORT=; state in .airflow/)
	AIRFLOW_HOME=$(CURDIR)/.airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/orchestration/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=false \
	AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=true \
	AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$${PORT:-8080} \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$${PORT:-8080}/execution/ \
	PATH=$(CURDIR)/$(AIRFLOW_BIN):$$PATH \
	$(AIRFLOW_BIN)/airflow standalone

# pytest-xdist workers for the suite, each test file kept on one worker (--dist loadfile): a
# session fixture is built per worker, in the worker's own temp folder (README, Tests). Files are
# handed out in collection order (--no-loadscope-reorder), which puts the longest first
# (tests/conftest.py, LONGEST_FILES); xdist's own order, most tests first, left them for last.
TEST_WORKERS ?= 2

# the Spark tests need a Java runtime (.ci/run installs one): without it they are skipped, said
JAVA := $(shell command -v java 2>/dev/null)

.PHONY: test
test: install $(if $(JAVA),spark-install) airflow lint ## Lint, then the test suite on TEST_WORKERS=2 workers (Spark tests included where Java is), then the Airflow DAG tests in .venv-airflow
	$(if $(JAVA),,@echo "warning: no java on PATH: the Spark tests are skipped (Debian: apt-get install openjdk-17-jre-headless)")
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
	$(AIRFLOW_BIN)/pytest tests/orchestration

.PHONY: mutation
mutation: install ## Mutation testing of the code that protects data (mutmut, ~1 h on 2 cores; MUTANTS="extract.source*" for some)
	HYPOTHESIS_PROFILE=mutation $(BIN)/mutmut run --max-children $${JOBS:-2} $(MUTANTS)
	$(BIN)/python -m tests.mutation_summary

.PHONY: bench
bench: install ## Benchmark the extractor against the fetch floor at 100,000 users (ARGS= for more)
	$(BIN)/python -m benchmarks.extract_bench $(ARGS)

.PHONY: bench-night
bench-night: install ## Three nights (first, typical, quiet) step by step beside their floors at 100,000 users (ARGS="--large --baseline DIR")
	$(BIN)/python -m benchmarks.night_bench $(ARGS)

.PHONY: bench-1m
bench-1m: install ## The same at 1,000,000 users (memory must stay under 1 GB)
	$(BIN)/python -m benchmarks.extract_bench --users 1000000 --tracks 100000 --nights 0

.PHONY: bench-serve
bench-serve: install ## Benchmark the serving API at 100,000 users beside the framework floor (needs wrk)
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m benchmarks.serve_bench $(ARGS)

.PHONY: lint
lint: install ## Lint Python (ruff) and the dbt models' SQL (sqlfluff, DuckDB dialect)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MOOVITAMIX_DUCKDB_PATH=:memory: $(BIN)/sqlfluff lint --nocolor dbt_project/models

.PHONY: clean
clean: ## Remove the data folder and dbt output (keeps .venv)
	rm -rf data target logs mutants
