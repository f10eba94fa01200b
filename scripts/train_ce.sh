#!/usr/bin/env bash
# Train the cross-encoder on data/rank/train.csv, AUC on dev_pairwise.csv.
# Extra flags pass through, e.g.: bash scripts/train_ce.sh --max_steps 300 --model_name_or_path DIR
# Multi-GPU (PaddleNLP form), same as GPUS="0,1,2,3" bash scripts/train_ce.sh:
#   python -u -m paddle.distributed.launch --gpus "0,1,2,3" cross_encoder/train_ce.py \
#       --device gpu --train_set data/rank/train.csv --test_file data/rank/dev_pairwise.csv \
#       --save_dir ./checkpoints --model_name_or_path rocketqa-base-cross-encoder --batch_size 32 \
#       --save_steps 10000 --max_seq_len 384 --learning_rate 1E-5 --weight_decay 0.01 \
#       --warmup_proportion 0.1 --logging_steps 10 --seed 1 --epochs 3 --eval_step 1000
# CPU data-parallel: NPROC=2 bash scripts/train_ce.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
run_py cross_encoder/train_ce.py \
  --device cpu \
  --train_set "$DATA_DIR/rank/train.csv" \
  --test_file "$DATA_DIR/rank/dev_pairwise.csv" \
  --save_dir "${SAVE_DIR:-checkpoints/cross_encoder}" \
  --batch_size 32 \
  --save_steps 100 \
  --max_seq_len 64 \
  --learning_rate 2E-5 \
  --weight_decay 0.01 \
  --warmup_proportion 0.1 \
  --logging_steps 10 \
  --seed 1 \
  --epochs 3 \
  --eval_step 100 \
  "$@"
