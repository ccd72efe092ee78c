# The README's two commands. Each creates or updates .venv, installs, then runs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast install clean

$(STAMP): setup.py requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[jax,test]"
	touch $(STAMP)

install: $(STAMP)

# Full suite on TensorFlow, then the backend-agnostic tests again on JAX.
test: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) -m pytest tests
	KERAS_BACKEND=jax $(PY) -m pytest tests -m backend_agnostic

# While working: skip the slow tests.
test-fast: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) -m pytest tests -m "not slow"

demo: $(STAMP)
	$(PY) samples/demo.py

clean:
	rm -rf $(VENV) build *.egg-info
