# Set-up and everyday commands. Everything runs from .venv in this folder.
#   make demo   install, then render one video on embedded services (no Docker, no servers)
#   make test   install, then run the whole test suite (needs Redis on 127.0.0.1:6379; .ci/run starts one)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU wheels by default, so no CUDA stack is downloaded; a GPU machine sets e.g.
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 (or empty for PyPI's default build).
TORCH_INDEX_URL ?= https://download.pytorch.org/whl/cpu
PROMPT ?= a red square moving right

.PHONY: install demo test lint format config-docs up clean

install: $(VENV)/.installed

# Torch first, pinned and from the chosen index; then the package (editable: models/ and
# migrations/ are read from this checkout) with every extra.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install "torch==2.13.0" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/python -m pip install -e ".[all]"
	touch $@

demo: install
	$(BIN)/chorus demo "$(PROMPT)" --out demo.mp4

up: install
	$(BIN)/chorus up

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/config_docs.py --check

format: install
	$(BIN)/ruff format .

config-docs: install
	$(BIN)/python scripts/config_docs.py

clean:
	rm -rf chorus-data demo.mp4
