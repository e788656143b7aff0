# Each target bootstraps .venv on first use. torch is pinned so pip takes the local CPU wheel
# instead of a multi-GB CUDA build.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.nmkit-installed

.PHONY: demo test bench lint clean gpu-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q src >/dev/null  # bytecode for the editable install, even under PYTHONDONTWRITEBYTECODE
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nmkit run recipes/hamming.yaml recipes/optimal-transport.yaml recipes/ot-moe-routing.yaml recipes/relax-sor-contextual.yaml recipes/compress-pc.yaml recipes/attack-quadattack.yaml recipes/prune-global-mp.yaml
	$(BIN)/nmkit run recipes/train-snn.yaml --set steps=100 --set eval_every=50

test: $(STAMP)
	TRITON_INTERPRET=1 $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

gpu-check: $(STAMP)
	benchmarks/gpu_check.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
