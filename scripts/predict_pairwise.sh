#!/usr/bin/env bash
# Score test_pairwise.csv (query, title, recall score) with a pairwise checkpoint.
#   bash scripts/predict_pairwise.sh [checkpoint dir] [extra flags]
# GPU: python -u ernie_matching/predict_pairwise.py --device gpu --params_path CKPT --input_file data/sort/test_pairwise.csv
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
CKPT=${1:-checkpoints/pairwise/model_best}; shift || true
"$PYTHON" -u ernie_matching/predict_pairwise.py --device cpu --params_path "$CKPT" \
  --input_file "$DATA_DIR/sort/test_pairwise.csv" --max_seq_length 64 --batch_size 64 \
  --output_file "${OUTPUT_FILE:-output/pairwise_predictions.tsv}" "$@"
