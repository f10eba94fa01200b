#!/usr/bin/env bash
# Create .venv, install the pinned requirements and the project itself (editable). Idempotent: a second
# run only checks a stamp.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing pinned requirements and the project (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  # the project, editable: core, deploy, recall, ernie_matching, cross_encoder import from anywhere
  if ! out=$(.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1); then
    echo "$out" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
echo "[setup] ok: $(.venv/bin/python --version), paddle $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("paddlepaddle"))')"
