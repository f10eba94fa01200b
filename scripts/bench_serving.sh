#!/usr/bin/env bash
# Serving benchmark: engines, AUC per backend, and our server side by side with Infinity and the seed's
# Paddle Serving Pipeline server on the same weights (benchmarks/serving.py). Trains what it lacks:
#   the 12-layer cross-encoder with CLS pooling (600 steps, about 16 min on 2 cores; with CLS pooling a
#   Hugging Face BertForSequenceClassification holds exactly the same model, so the peers serve it too)
#   and its distilled students of STUDENT_LAYERS layers (default "6 4"; 900 steps each, about 17 and 13 min),
#   in work_dirs/distill/ce_<N>l_cls/model_900.
#   [STUDENT_LAYERS="6 4"] bash scripts/bench_serving.sh [teacher checkpoint] [extra flags]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
[ -f "$DATA_DIR/sort/holdout_pairwise.csv" ] || bash scripts/prepare_data.sh
bash scripts/bench_setup.sh
TEACHER=${1:-work_dirs/distill/ce_12l_cls/model_600}; shift || true
COMMON=(--batch_size 16 --learning_rate 5e-5 --warmup_proportion 0.1 --max_seq_len 64 --eval_step 0
  --save_steps 300 --epochs 1 --weight_decay 0.01 --seed 1000)
if [ ! -d "$TEACHER" ]; then
  SAVE_DIR=$(dirname "$TEACHER") bash scripts/train_ce.sh "${COMMON[@]}" --pooling cls --max_steps 600
fi
STUDENTS=()
for L in ${STUDENT_LAYERS:-6 4}; do
  STUDENT=work_dirs/distill/ce_${L}l_cls/model_900
  if [ ! -d "$STUDENT" ]; then
    SAVE_DIR=$(dirname "$STUDENT") bash scripts/train_ce.sh "${COMMON[@]}" --teacher "$TEACHER" --num_layers "$L" \
      --max_steps 900
  fi
  STUDENTS+=("$STUDENT")
done
"$PYTHON" -u benchmarks/serving.py --params_path "$TEACHER" --student "${STUDENTS[@]}" "$@"
