# The two commands the README promises: `make demo` and `make test`.
# Both set up everything themselves (virtualenv, packages, demo data).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DATA ?= data/demo
DEMO_CALLS ?= 500
PORT ?= 8866
PYTEST_ARGS ?=
# The suite runs in one worker per core (most tests wait on servers and browsers); a test file stays in one worker.
TEST_JOBS ?= auto

.PHONY: install demo demo-data test bench lint clean-demo wheel

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("dimnb needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# An editable install skips data files: enable the audio handler in JupyterLab by hand.
	mkdir -p $(VENV)/etc/jupyter/jupyter_server_config.d
	cp jupyter-config/jupyter_server_config.d/dimnb.json $(VENV)/etc/jupyter/jupyter_server_config.d/
	touch $(STAMP)

install: $(STAMP)

# The Spark property tests and notebook need pyspark (the [spark] extra) and Java (.ci/run installs it).
SPARK_STAMP := $(VENV)/.spark-installed
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,spark]'
	touch $(SPARK_STAMP)

# The PostgreSQL state-store tests need psycopg (the [postgresql] extra) and Debian's postgresql (.ci/run).
PG_STAMP := $(VENV)/.postgresql-installed
$(PG_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,postgresql]'
	touch $(PG_STAMP)

demo-data: install
	$(BIN)/dimnb demo setup --data $(DEMO_DATA) --calls $(DEMO_CALLS)

demo: demo-data
	$(BIN)/dimnb serve --data $(DEMO_DATA) --port $(PORT)

test: install $(SPARK_STAMP) $(PG_STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

bench: install $(SPARK_STAMP)
	for script in bench/*.py; do $(BIN)/python $$script --quick || exit 1; done
	$(BIN)/python bench/ingest.py --quick --system asterisk
	$(BIN)/python bench/ingest.py --quick --system 3cx-v20

# The wheel an administrator installs (docs/deploy.md): dist/dimnb-*.whl, dashboards and audit notebook inside.
wheel: install
	$(BIN)/python -m build --wheel --outdir dist .

clean-demo:
	rm -rf $(DEMO_DATA) $(DEMO_DATA).audit-key $(DEMO_DATA).audit-checkpoints.jsonl
