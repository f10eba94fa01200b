#!/usr/bin/env bash
# AUC / NDCG@3 / MRR of a cross-encoder checkpoint on dev_pairwise.csv.
#   bash scripts/evaluate_ce.sh [checkpoint dir] [extra flags]
# GPU: python -u cross_encoder/evaluate.py --device gpu --init_from_ckpt CKPT --test_file data/rank/dev_pairwise.csv
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
CKPT=${1:-checkpoints/cross_encoder/model_best}; shift || true
"$PYTHON" -u cross_encoder/evaluate.py --device cpu --init_from_ckpt "$CKPT" \
  --test_file "$DATA_DIR/rank/dev_pairwise.csv" --max_seq_length 64 --batch_size 64 "$@"
