PY ?= python3
.PHONY: install test demo lint
install:
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e .[dev]
test:
	$(PY) -m pytest -q -m "not slow and not gpu"
demo:
	$(PY) -m hardwire.bench.demo
lint:
	$(PY) -m ruff check compiler runtime tests hardwire
