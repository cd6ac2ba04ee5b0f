# Set-up and everyday commands. Everything runs from .venv in this folder.
#   make demo   install, then render one video on embedded services (no Docker, no servers)
#   make test   install, then run the whole test suite (needs Redis on 127.0.0.1:6379; .ci/run starts one)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Torch is installed first, pinned, so `.[all]` finds it satisfied. Where pip's find-links carry
# the 2.13.0+cpu wheel (this project's machines and CI) pip prefers it over PyPI's CUDA build;
# elsewhere pick the build with e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu (or /cu128).
TORCH_INDEX_URL ?=
PROMPT ?= a red square moving right

.PHONY: install demo test lint format config-docs up clean

install: $(VENV)/.installed

# Editable install: models/ and migrations/ are read from this checkout.
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
