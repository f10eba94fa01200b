#!/usr/bin/env bash
# Serving benchmark (needs a cross-encoder checkpoint; trains a short one if none is given).
#   bash scripts/bench_serving.sh [checkpoint dir] [extra flags]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
[ -f "$DATA_DIR/sort/dev_pairwise.csv" ] || bash scripts/prepare_data.sh
bash scripts/bench_setup.sh
CKPT=${1:-work_dirs/serving_ce/model_80}; shift || true
if [ ! -d "$CKPT" ]; then
  SAVE_DIR=work_dirs/serving_ce bash scripts/train_ce.sh --max_steps 80 --batch_size 16 --eval_step 0 --save_steps 80
  CKPT=work_dirs/serving_ce/model_80
fi
"$PYTHON" -u benchmarks/serving.py --params_path "$CKPT" "$@"
