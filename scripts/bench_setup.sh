#!/usr/bin/env bash
# A separate venv for the PyTorch reference side of the benchmarks (never needed by the pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-bench/bin/python ]; then python3 -m venv .venv-bench; fi
.venv-bench/bin/python -m pip install -q --disable-pip-version-check -r benchmarks/requirements-bench.txt
