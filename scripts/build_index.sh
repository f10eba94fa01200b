#!/usr/bin/env bash
# Export the recall encoder (if given a checkpoint) and index a corpus in Milvus.
#   bash scripts/build_index.sh [ENCODER_DIR_OR_CHECKPOINT] [CORPUS_FILE] [extra build_index.py flags]
# Defaults: the zero-shot multilingual-e5-small encoder and data/recall/corpus.csv, into the
# Milvus Lite database work_dirs/milvus.db (collection kuake_titles). A Milvus server instead:
#   bash scripts/build_index.sh output/recall_encoder data/recall/corpus.csv --milvus_uri http://127.0.0.1:19530
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SRC=${1:-}
CORPUS=${2:-$DATA_DIR/recall/corpus.csv}
shift $(( $# > 2 ? 2 : $# ))
ENCODER=${ENCODER_DIR:-output/recall_encoder}
if [ -z "$SRC" ]; then
  [ -f "$ENCODER/inference.pdiparams" ] || "$PYTHON" recall/export_model.py --output_path "$ENCODER" --onnx
elif [ -f "$SRC/model_state.pdparams" ]; then
  "$PYTHON" recall/export_model.py --params_path "$SRC" --output_path "$ENCODER" --onnx
else
  ENCODER=$SRC
fi
"$PYTHON" -u recall/build_index.py --model_dir "$ENCODER" --corpus_file "$CORPUS" "$@"
