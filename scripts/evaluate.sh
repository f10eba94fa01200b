#!/usr/bin/env bash
# AUC / NDCG@3 / MRR of a pairwise checkpoint on dev_pairwise.csv.
#   bash scripts/evaluate.sh [checkpoint dir] [extra flags]
# GPU: python -u ernie_matching/evaluate.py --device gpu --init_from_ckpt CKPT --test_file data/sort/dev_pairwise.csv
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
CKPT=${1:-checkpoints/pairwise/model_best}; shift || true
"$PYTHON" -u ernie_matching/evaluate.py --device cpu --init_from_ckpt "$CKPT" \
  --test_file "$DATA_DIR/sort/dev_pairwise.csv" --max_seq_length 64 --batch_size 64 "$@"
