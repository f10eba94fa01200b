#!/usr/bin/env bash
# Ranking quality benchmark (long: fine-tunes two 12-layer models on CPU). Flags pass through.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
[ -f "$DATA_DIR/sort/holdout_graded.csv" ] || bash scripts/prepare_data.sh
"$PYTHON" -u benchmarks/ranking_quality.py --data_dir "$DATA_DIR" "$@"
