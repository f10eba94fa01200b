#!/usr/bin/env bash
# Build the neural_search TSV files from KUAKE-QTR: bash scripts/prepare_data.sh [src dir] [out dir]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
"$PYTHON" datasets/prepare_kuake_qtr.py --src "${1:-${KUAKE_DIR:-$ROOT/../shared/datasets/kuake_qtr}}" --out "${2:-$DATA_DIR}"
