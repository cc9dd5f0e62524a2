# beaminspect: common tasks.  Every target sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast samples bench noise fuzz opcodes clean oracles

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The main job on the bundled samples: a module's tables, its disassembly, and the
# hot-load prediction for a bundled pair of versions.
demo: $(STAMP)
	$(VENV)/bin/beaminspect show samples/ebin/bi_server.beam
	@echo
	$(VENV)/bin/beaminspect disasm samples/ebin/bi_server.beam --function handle_call/3
	@echo
	-$(VENV)/bin/beaminspect diff samples/pairs/local_loop_killed/v1/*.beam samples/pairs/local_loop_killed/v2/*.beam

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

samples:
	bash tools/build_samples.sh

# Debian roots with Erlang/OTP 27 and 29 (+ Elixir), the tests' newer-release oracles,
# cached in ${BEAMINSPECT_ROOTS:-/var/cache/beaminspect/roots}.  Needs root.
oracles:
	bash tools/otp-roots.sh

opcodes: $(STAMP)
	$(PY) tools/gen_opcodes.py

# The benchmark runs a regular (not editable) install, as users have it, in its own
# environment: pip byte-compiles it, and no editable-install hook slows every start.
# The source tree is byte-compiled too, for the in-process profiles.
BENCH_VENV := .venv-bench
BENCH_PY   := $(BENCH_VENV)/bin/python

bench: $(STAMP)
	test -x $(BENCH_PY) || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install -q .
	$(BENCH_PY) -m pip install -q --no-deps --force-reinstall .
	$(PY) -m compileall -q beaminspect
	$(BENCH_PY) bench/run.py
	$(MAKE) noise

# Findings per changed module by kind and severity (bench/NOISE.md): the bundled pairs,
# and OTP 27 -> OTP 29's lib trees when the oracle roots are built (make oracles).
ROOTS ?= /var/cache/beaminspect/roots
noise: $(STAMP)
	{ echo "# Noise: findings per changed module"; echo; \
	  if [ -d $(ROOTS)/otp27/usr/lib/erlang/lib ] && [ -d $(ROOTS)/otp29/usr/lib/erlang/lib ]; then \
	    $(PY) bench/noise.py $(ROOTS)/otp27/usr/lib/erlang/lib $(ROOTS)/otp29/usr/lib/erlang/lib; \
	  else $(PY) bench/noise.py; fi; } > bench/NOISE.md
	cat bench/NOISE.md

fuzz: $(STAMP)
	$(PY) tools/fuzz.py --long

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .hypothesis build *.egg-info
