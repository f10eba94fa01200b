#!/usr/bin/env bash
# Recall top-50 for every dev query from the Milvus index, then recall@1/5/10/20/50 and MRR@10.
#   bash scripts/evaluate_recall.sh [ENCODER_DIR] [extra run_recall.py flags, e.g. --milvus_uri ...]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
ENCODER=${1:-output/recall_encoder}
shift $(( $# > 1 ? 1 : $# ))
OUT=${RECALL_RESULT_DIR:-recall_result_dir}
"$PYTHON" -u recall/run_recall.py --model_dir "$ENCODER" --similar_text_pair_file "$DATA_DIR/recall/dev.csv" \
  --recall_result_dir "$OUT" --recall_result_file recall_result.txt --recall_num 50 "$@"
"$PYTHON" recall/evaluate.py --similar_text_pair_file "$DATA_DIR/recall/dev.csv" \
  --recall_result_file "$OUT/recall_result.txt" --recall_num 50
