#!/usr/bin/env bash
# Train the recall encoder with SimCSE (unsupervised: one text per line, e.g. data/recall/corpus.csv).
# Extra flags pass through, e.g.: bash scripts/train_simcse.sh --max_steps 200 --dup_rate 0.3
# Multi-GPU (PaddleNLP form), same as GPUS="0,1,2,3" bash scripts/train_simcse.sh:
#   python -u -m paddle.distributed.launch --gpus "0,1,2,3" recall/train_simcse.py --device gpu \
#       --save_dir ./checkpoints/simcse --batch_size 64 --learning_rate 5E-5 --epochs 1 --save_steps 2000 \
#       --max_seq_length 64 --dropout 0.1 --scale 20 --output_emb_size 0 --train_set_file data/recall/corpus.csv
# CPU data-parallel: NPROC=2 bash scripts/train_simcse.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
run_py recall/train_simcse.py \
  --device cpu \
  --save_dir "${SAVE_DIR:-checkpoints/simcse}" \
  --batch_size 32 \
  --learning_rate 5E-5 \
  --epochs 1 \
  --save_steps 2000 \
  --max_seq_length 64 \
  --dropout 0.1 \
  --scale 20 \
  --margin 0 \
  --warmup_proportion 0.1 \
  --eval_steps 0 \
  --train_set_file "${TRAIN_SET_FILE:-$DATA_DIR/recall/corpus.csv}" \
  "$@"
