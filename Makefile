# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0

.PHONY: demo test install benchmark clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"   # CPU torch first: kornia would otherwise pull a multi-GB CUDA build
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/restore run recipes/faces.yaml -o restored/demo --overwrite

test: install
	$(VENV)/bin/ruff check restore tests benchmarks priors
	$(PY) -m pytest

benchmark: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) restored build *.egg-info
