#!/usr/bin/env bash
# Rank test_pairwise.csv with a cross-encoder checkpoint and print the top-k.
#   bash scripts/predict_ce.sh [checkpoint dir] [extra flags]
# GPU: python -u cross_encoder/predict.py --device gpu --params_path CKPT --input_file data/sort/test_pairwise.csv --topk 10
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
CKPT=${1:-checkpoints/cross_encoder/model_best}; shift || true
"$PYTHON" -u cross_encoder/predict.py --device cpu --params_path "$CKPT" \
  --input_file "$DATA_DIR/sort/test_pairwise.csv" --max_seq_length 64 --batch_size 64 --topk 10 "$@"
