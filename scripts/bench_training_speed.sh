#!/usr/bin/env bash
# Training speed: Paddle settings vs PyTorch on the same architecture and batches.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
[ -f "$DATA_DIR/sort/train_pairwise.csv" ] || bash scripts/prepare_data.sh
bash scripts/bench_setup.sh
"$PYTHON" -u benchmarks/training_speed.py --data_dir "$DATA_DIR" "$@"
