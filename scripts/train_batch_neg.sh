#!/usr/bin/env bash
# Train the recall dual encoder with in-batch negatives on data/recall/train.csv (query\ttitle).
# Extra flags pass through, e.g.: bash scripts/train_batch_neg.sh --max_steps 300 --output_emb_size 256
# Multi-GPU (PaddleNLP form), same as GPUS="0,1,2,3" bash scripts/train_batch_neg.sh:
#   python -u -m paddle.distributed.launch --gpus "0,1,2,3" recall/train_batch_neg.py --device gpu \
#       --save_dir ./checkpoints/batch_neg --batch_size 64 --learning_rate 5E-5 --epochs 3 \
#       --output_emb_size 0 --save_steps 500 --max_seq_length 64 --margin 0.2 \
#       --train_set_file data/recall/train.csv --evaluate --recall_num 50 \
#       --similar_text_pair_file data/recall/dev.csv --corpus_file data/recall/corpus.csv
# CPU data-parallel: NPROC=2 bash scripts/train_batch_neg.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
run_py recall/train_batch_neg.py \
  --device cpu \
  --save_dir "${SAVE_DIR:-checkpoints/batch_neg}" \
  --batch_size 32 \
  --learning_rate 5E-5 \
  --epochs 3 \
  --output_emb_size 0 \
  --save_steps 500 \
  --max_seq_length 64 \
  --margin 0.2 \
  --scale 30 \
  --warmup_proportion 0.1 \
  --eval_steps 0 \
  --train_set_file "$DATA_DIR/recall/train.csv" \
  "$@"
