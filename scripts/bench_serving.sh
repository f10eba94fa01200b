#!/usr/bin/env bash
# Serving benchmark (needs a cross-encoder checkpoint; trains a short one if none is given).
#   bash scripts/bench_serving.sh [checkpoint dir] [extra flags]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
[ -f "$DATA_DIR/sort/dev_pairwise.csv" ] || bash scripts/prepare_data.sh
bash scripts/bench_setup.sh
# CLS pooling: a Hugging Face BertForSequenceClassification (what sentence-transformers' CrossEncoder loads)
# then holds exactly the same model, so the peer runs the same weights (checked: max |prob diff|)
CKPT=${1:-work_dirs/serving_ce_cls/model_80}; shift || true
if [ ! -d "$CKPT" ]; then
  SAVE_DIR=work_dirs/serving_ce_cls bash scripts/train_ce.sh --max_steps 80 --batch_size 16 --eval_step 0 \
    --save_steps 80 --pooling cls
  CKPT=work_dirs/serving_ce_cls/model_80
fi
"$PYTHON" -u benchmarks/serving.py --params_path "$CKPT" "$@"
