#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Paddle Serving's official clients (brpc Client, HttpClient, PipelineClient) exist only for Python <= 3.9:
# ../shared/tools/paddle-serving-py39 builds that Python with the unmodified packages into .cache/ (about a
# minute the first time, seconds after). The tests use it; without it the brpc-client tests skip.
PY39_TOOL=../shared/tools/paddle-serving-py39/setup.sh
if [ -f "$PY39_TOOL" ]; then
  mkdir -p .cache
  if ! bash "$PY39_TOOL" > .cache/paddle-serving-py39-setup.out 2>&1; then
    echo "[test] warning: the Python 3.9 Paddle Serving clients could not be built (see .cache/paddle-serving-py39-setup.out);"
    echo "[test]          the tests that run them will be skipped"
  fi
fi
source scripts/env.sh
echo "[test] lint: ruff check + ruff format --check"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
"$PYTHON" -m pytest -q "$@"
