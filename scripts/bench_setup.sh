#!/usr/bin/env bash
# Separate venvs for the peers the benchmarks compare with (never needed by the pipeline):
#   .venv-bench     PyTorch reference: torch, transformers, sentence-transformers
#   .venv-infinity  Infinity (infinity-emb 0.0.78), a re-ranking server, torch and optimum (ONNX) engines
#   the seed's Paddle Serving 0.9 Pipeline server: ../shared/tools/paddle-serving-py39 with WITH_PADDLE=1,
#   plus the `tokenizers` library there (the seed's server tokenizes in Python inside its Op)
set -euo pipefail
cd "$(dirname "$0")/.."
# the project's venv too: benchmarks/onnx_variants.py runs ONNX Runtime's transformer optimizer, which needs sympy
[ -x .venv/bin/python ] || bash scripts/setup.sh
.venv/bin/python -m pip install -q --disable-pip-version-check sympy==1.14.0 mpmath==1.3.0
if [ ! -x .venv-bench/bin/python ]; then python3 -m venv .venv-bench; fi
.venv-bench/bin/python -m pip install -q --disable-pip-version-check -r benchmarks/requirements-bench.txt
if [ ! -x .venv-infinity/bin/python ]; then python3 -m venv .venv-infinity; fi
.venv-infinity/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv-infinity/bin/python -m pip install -q --disable-pip-version-check -r benchmarks/requirements-infinity.txt
if [ -d ../shared/tools/paddle-serving-py39 ]; then
  PY39=$(WITH_PADDLE=1 bash ../shared/tools/paddle-serving-py39/setup.sh)
  "$PY39" -m pip install -q --disable-pip-version-check tokenizers==0.22.2
fi
