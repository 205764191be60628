# Two commands for a fresh machine: `make reproduce` (the main job) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= all
PROFILE ?= default

.PHONY: reproduce report test test-all bench lint dry-run

$(BIN)/adaptivemix: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/adaptivemix

# check-config first: Snakemake reads --configfile before the Snakefile runs, and its own
# message for a YAML syntax error or an empty or missing file names neither file nor line.
reproduce: $(BIN)/adaptivemix
	$(BIN)/adaptivemix check-config --quiet config/$(PROFILE).yaml
	$(BIN)/snakemake --cores $(CORES) --configfile config/$(PROFILE).yaml

# The HTML report of a finished `make reproduce` (every table and figure, by task and dataset).
report: $(BIN)/adaptivemix
	$(BIN)/snakemake --report results/$(PROFILE)/report.html --configfile config/$(PROFILE).yaml

# The fast tier (every unit, registry and shrunken-DAG test; about 12 minutes on 2 cores), one
# pytest-xdist worker per core; the tests of the shared smoke DAG keep to one worker.
test: $(BIN)/adaptivemix
	$(BIN)/ruff check .
	$(BIN)/python -m pytest --benchmark-disable -m "not heavy" --durations=25 \
		-n auto --dist loadgroup

# Then the slow tier: the default profile rerun against the reference outputs, a real SLURM
# cluster, the HTML report in Chromium, and every other test over about a minute.
test-all: test
	$(BIN)/python -m pytest --benchmark-disable -m heavy --durations=25

bench: $(BIN)/adaptivemix
	mkdir -p results/benchmarks
	$(BIN)/python -m pytest tests/benchmarks --benchmark-only \
		--benchmark-json=results/benchmarks/step_cost.json
	$(BIN)/python -m adaptivemix.report.bench results/benchmarks/step_cost.json \
		results/benchmarks/step_cost

lint: $(BIN)/adaptivemix
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakemake --lint --configfile config/smoke.yaml

dry-run: $(BIN)/adaptivemix
	$(BIN)/adaptivemix check-config --quiet config/$(PROFILE).yaml
	$(BIN)/snakemake -n --configfile config/$(PROFILE).yaml

