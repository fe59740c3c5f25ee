# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first: a bare `torch` requirement would pull several GB of CUDA packages.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/stylegan init --cfg stylegan2 --resolution 64 --cbase 8192 --cmax 256 --map-depth 4 --seed 0 --outdir out/demo
	$(VENV)/bin/stylegan info --network out/demo/network-init.safetensors
	$(VENV)/bin/stylegan generate --network out/demo/network-init.safetensors --seeds 0-15 --trunc 0.7 --grid --outdir out/demo/images
	$(VENV)/bin/stylegan style-mixing --network out/demo/network-init.safetensors --rows 1,2,3 --cols 4,5,6 --styles 0-5 --outdir out/demo/style-mixing
	@echo "demo: images written to out/demo/"

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

bench: $(STAMP)
	$(PY) benchmarks/bench_generator.py

clean:
	rm -rf $(VENV) out
