#!/usr/bin/env bash
# Train the pairwise ranker (ernie_matching) on data/sort/train_pairwise.csv, AUC on dev_pairwise.csv.
# Extra flags pass through, e.g.: bash scripts/train_pairwise.sh --max_steps 300 --model_name_or_path DIR
# Multi-GPU (PaddleNLP form), same as GPUS="0,1,2,3" bash scripts/train_pairwise.sh:
#   python -u -m paddle.distributed.launch --gpus "0,1,2,3" ernie_matching/train_pairwise.py \
#       --device gpu --save_dir ./checkpoints --batch_size 32 --learning_rate 2E-5 --margin 0.1 \
#       --eval_step 100 --train_file data/sort/train_pairwise.csv --test_file data/sort/dev_pairwise.csv
# CPU data-parallel: NPROC=2 bash scripts/train_pairwise.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
run_py ernie_matching/train_pairwise.py \
  --device cpu \
  --save_dir "${SAVE_DIR:-checkpoints/pairwise}" \
  --batch_size 32 \
  --learning_rate 2E-5 \
  --margin 0.1 \
  --eval_step 100 \
  --save_step 100 \
  --max_seq_length 64 \
  --train_file "$DATA_DIR/sort/train_pairwise.csv" \
  --test_file "$DATA_DIR/sort/dev_pairwise.csv" \
  "$@"
