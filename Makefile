# Two commands from a fresh clone: `make demo` (set up, then synthesize data, train, evaluate) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
TEST_INSTALLED := $(VENV)/.test-installed
DEMO_EPOCHS ?= 8

FER2013 ?= ../shared/data/fer2013.zip
FERPLUS ?= ../shared/data/fer2013-ferplus.csv

.PHONY: setup demo check docs test bench default-model clean

setup: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# torch only serves the torch-backend test. "+cpu" pins the CPU build: a plain `torch` would pull CUDA (gigabytes).
$(TEST_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e ".[test,check,ray,jax]"
	$(BIN)/python -m pip install --quiet "torch==2.13.0+cpu" || echo "No CPU wheel of torch 2.13.0 here: the torch-backend test will be skipped."
	@# The web page is tested in Debian's chromium, driven by Playwright (no browser download).
	@command -v chromium >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
		|| echo "Could not install chromium (apt-get install chromium): the browser tests will be skipped."; }
	@# The --show window is tested on a virtual display.
	@command -v Xvfb >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq xvfb) >/dev/null 2>&1 \
		|| echo "Could not install Xvfb (apt-get install xvfb): the --show window tests will be skipped."; }
	touch $@

demo: $(INSTALLED)
	rm -rf demo
	$(BIN)/emolens data synth demo/data
	$(BIN)/emolens train demo/data --epochs $(DEMO_EPOCHS) --lr 1e-3 --out demo/run
	$(BIN)/emolens evaluate demo/run demo/data
	$(BIN)/emolens predict samples/astronaut.png --out demo/predict
	@echo "Open demo/run/report.html for the evaluation and demo/predict/astronaut.annotated.png for the bundled model's prediction."
	@echo "emolens is in .venv: run 'source .venv/bin/activate' to put it on your PATH (or call .venv/bin/emolens)."

# Lint, formatting and types (settings in pyproject.toml), then the docs site; `make test` runs it first.
check: $(TEST_INSTALLED)
	$(BIN)/ruff check src tests bench docs/hooks
	$(BIN)/ruff format --check src tests bench docs/hooks
	$(BIN)/mypy
	$(MAKE) docs

# The docs site into site/ (mkdocs.yml; strict, so a warning fails it). Not --quiet: it hides warnings from the
# count that strict mode fails on, so a broken link would pass.
docs: $(TEST_INSTALLED)
	$(BIN)/mkdocs build --site-dir site

test: check
	$(BIN)/python -m pytest

# Needs ../shared/data/fer2013.zip; tf-keras is the notebook's Keras 2 (ImageDataGenerator), for comparison only.
bench: $(INSTALLED)
	$(BIN)/python -m pip install --quiet --no-deps "tf-keras>=2.16"
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/predict_latency.py

# How the bundled model (src/emolens/weights/default.*) was made: a teacher, the average of three runs (the
# ferplus recipe on the wider resnet, 60 epochs of FER+'s vote distribution mixed with a quarter of the FER2013
# label, twice: seed 0 in float32 and seed 1 in bfloat16 on the same validation faces, each as it was trained;
# and mini_resnet on the votes alone, 40 epochs), then the bundled mini_resnet on the ferplus recipe for 120
# epochs in bfloat16 with half of each target the teacher's ten-crop answer; no neutral factor (the one chosen on
# validation faces with bench/frontier.py is 1), evaluated against the votes' majority with flip TTA. The FER2013-label
# recipes (seed, cpu) stay: `emolens train $(FER2013) --recipe cpu` reproduces the notebook's kind of model.
default-model: $(INSTALLED)
	$(BIN)/emolens train $(FER2013) --labels $(FERPLUS) --recipe ferplus --model resnet --precision float32 --out runs/teacher-resnet
	$(BIN)/emolens train $(FER2013) --labels $(FERPLUS) --recipe ferplus --model resnet --seed 1 --split-seed 0 --precision bf16 --out runs/teacher-resnet-s1
	$(BIN)/emolens train $(FER2013) --labels $(FERPLUS) --recipe ferplus --source-label-weight 0 --epochs 40 --precision float32 --out runs/teacher-votes
	$(BIN)/emolens ensemble runs/teacher-resnet runs/teacher-resnet-s1 runs/teacher-votes --out runs/teacher.keras
	$(BIN)/emolens train $(FER2013) --labels $(FERPLUS) --recipe ferplus --teacher runs/teacher.keras --teacher-weight 0.5 --teacher-tta crops --precision bf16 --epochs 120 --out runs/default
	$(BIN)/emolens calibrate runs/default $(FER2013) --labels $(FERPLUS)
	$(BIN)/emolens evaluate runs/default $(FER2013) --labels $(FERPLUS) --tta flip
	$(BIN)/emolens export runs/default --format onnx --out src/emolens/weights/default.onnx
	$(BIN)/emolens export runs/default --format keras --out src/emolens/weights/default.keras

clean:
	rm -rf $(VENV) demo runs site .pytest_cache
