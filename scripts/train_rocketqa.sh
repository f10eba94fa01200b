#!/usr/bin/env bash
# Both stages trained on what recall returns, RocketQA style, from the data of prepare_data.sh:
#   1. the binary cross-encoder (train_ce.py, CLS pooling), unless CE_INIT names a trained one;
#   2. the zero-shot recall encoder and its Milvus Lite index over the corpus;
#   3. hard negatives: each training query's top 50 from that index, its positives dropped and the
#      titles the binary cross-encoder scores >= 0.9 dropped as likely unlabelled positives
#      (recall/mine_negatives.py, resumable);
#   4. the ranker: the binary cross-encoder fine-tuned on the graded labels 0..3 plus the mined
#      negatives (train_ce.py --init_weights; benchmarks/results/ranking_graded_mined_from_binary.md);
#   5. the ranker's scores of the mined pairs (deploy/python/predict.py --output_file);
#   6. the recall encoder: in-batch + mined negatives + margin-MSE distillation from those scores
#      (train_batch_neg.py; benchmarks/results/recall_distilled_from_binary.md), and its index.
# The step counts below end each training run. Each step is skipped when its output is there and
# newer than its input, so a re-run continues where a failed one stopped and redoes what follows a
# redone step (mining itself resumes: delete hard_negatives.tsv to mine again).
# The default lengths are those of the benchmark runs above (their train times are in those files).
# RANK_STEPS=3000 trains a better ranker in about 55 more minutes on 2 cores
# (benchmarks/results/recall_e2e_long.md); the distilled encoder of step 6 is measured with the default.
# RANK_FREEZE=1 keeps the ranker's word embeddings as loaded (--freeze_embeddings; the ranker's output
# path names no flag, so give such a run its own WORK).
# Multi-GPU: GPUS="0,1,2,3" (training steps through paddle.distributed.launch).
#   [WORK=work_dirs/rocketqa] [MODEL=multilingual-e5-small] [CE_INIT=checkpoint] [CE_STEPS=600]
#   [RANK_STEPS=600] [RANK_FREEZE=] [RECALL_STEPS=100] [MAX_SEQ_LEN=64] [RECALL_NUM=50] bash scripts/train_rocketqa.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
WORK=${WORK:-work_dirs/rocketqa}
MODEL=${MODEL:-multilingual-e5-small}
CE_STEPS=${CE_STEPS:-600}
RANK_STEPS=${RANK_STEPS:-600}
RECALL_STEPS=${RECALL_STEPS:-100}
RANK_EXTRA=()
[ -z "${RANK_FREEZE:-}" ] || RANK_EXTRA=(--freeze_embeddings)
LEN=${MAX_SEQ_LEN:-64}
RECALL_NUM=${RECALL_NUM:-50}
DB="$WORK/milvus.db"
MINED="$WORK/hard_negatives.tsv"
[ -f "$DATA_DIR/rank/train_graded.csv" ] || bash scripts/prepare_data.sh
mkdir -p "$WORK"
CE=(--device cpu --model_name_or_path "$MODEL" --batch_size 16 --max_seq_len "$LEN" --weight_decay 0.01
  --warmup_proportion 0.1 --epochs 100 --eval_step 0 --logging_steps 10 --seed 1000 --pooling cls
  --test_file "$DATA_DIR/rank/dev_pairwise.csv")
ENGINE=(--backend onnxruntime --replicas 2 --cpu_threads "$OMP_NUM_THREADS" --max_seq_length "$LEN")
# done_step OUTPUT [INPUT...]: true (skip the step) when OUTPUT exists and no INPUT is newer; a step
# whose input was redone is redone too (its tool replaces the old output), so nothing stale is kept.
done_step() {
  local out=$1 in
  shift
  [ -e "$out" ] || return 1
  for in in "$@"; do
    if [ "$in" -nt "$out" ]; then
      echo "   $out is older than $in: redone"
      return 1
    fi
  done
  echo "   $out is there: skipped"
}
# index_step NAME ENCODER_EXPORT: index the corpus unless NAME was built from this export (a stamp
# newer than the export, and the index there), so no older model's vectors stay behind.
index_step() {
  local exists="import sys; from core.index import MilvusIndex; sys.exit(not MilvusIndex(sys.argv[1], sys.argv[2]).exists())"
  if done_step "$WORK/$1.indexed" "$2/inference.onnx" >/dev/null && "$PYTHON" -c "$exists" "$DB" "$1" 2>/dev/null; then
    echo "   index $1 is there: skipped"
    return
  fi
  "$PYTHON" -u recall/build_index.py --model_dir "$2" --corpus_file "$DATA_DIR/recall/corpus.csv" \
    --milvus_uri "$DB" --collection "$1" "${ENGINE[@]}"
  touch "$WORK/$1.indexed"
}

echo "== 1. binary cross-encoder"
if [ -n "${CE_INIT:-}" ]; then
  BINARY=$CE_INIT
else
  BINARY="$WORK/ce_binary/model_$CE_STEPS"
  done_step "$BINARY" || run_py cross_encoder/train_ce.py "${CE[@]}" --train_set "$DATA_DIR/rank/train.csv" \
    --save_dir "$WORK/ce_binary" --learning_rate 5e-5 --max_steps "$CE_STEPS" --save_steps "$CE_STEPS"
fi
done_step "$WORK/export/ce_binary/inference.onnx" "$BINARY" ||
  "$PYTHON" cross_encoder/export_model.py --params_path "$BINARY" --output_path "$WORK/export/ce_binary" --onnx

echo "== 2. zero-shot recall encoder and its index"
done_step "$WORK/export/recall_zero_shot/inference.onnx" ||
  "$PYTHON" recall/export_model.py --model_name_or_path "$MODEL" --output_path "$WORK/export/recall_zero_shot" --onnx
index_step zero_shot "$WORK/export/recall_zero_shot"

echo "== 3. hard negatives mined from the index, denoised by the binary cross-encoder"
"$PYTHON" -u recall/mine_negatives.py --model_dir "$WORK/export/recall_zero_shot" --ranker_dir "$WORK/export/ce_binary" \
  --train_file "$DATA_DIR/recall/train.csv" --output "$MINED" --milvus_uri "$DB" --collection zero_shot \
  --recall_num "$RECALL_NUM" --negatives_per_query 4 --denoise_threshold 0.9 "${ENGINE[@]}"

echo "== 4. ranker: the binary cross-encoder fine-tuned on the grades plus the mined negatives"
RANKER="$WORK/ranker/model_$RANK_STEPS"
done_step "$RANKER" "$BINARY" || run_py cross_encoder/train_ce.py "${CE[@]}" --train_set "$DATA_DIR/rank/train_graded.csv" \
  --max_grade 3 --hard_negatives_file "$MINED" --init_weights "$BINARY" --save_dir "$WORK/ranker" \
  --learning_rate 2e-5 --max_steps "$RANK_STEPS" --save_steps "$RANK_STEPS" ${RANK_EXTRA[@]+"${RANK_EXTRA[@]}"}
done_step "$WORK/export/ranker/inference.onnx" "$RANKER" ||
  "$PYTHON" cross_encoder/export_model.py --params_path "$RANKER" --output_path "$WORK/export/ranker" --onnx

echo "== 5. the ranker's scores of the mined pairs (the distillation teacher)"
TEACHER="$WORK/teacher_scores.tsv"
done_step "$TEACHER" "$WORK/export/ranker/inference.onnx" || "$PYTHON" -u deploy/python/predict.py --model_dir "$WORK/export/ranker" \
  --input_file "$MINED.scores.tsv" --output_file "$TEACHER" "${ENGINE[@]}"

echo "== 6. recall encoder: in-batch + mined negatives + distillation from the ranker, and its index"
ENCODER="$WORK/recall/model_$RECALL_STEPS"
done_step "$ENCODER" "$TEACHER" || run_py recall/train_batch_neg.py --device cpu --model_name_or_path "$MODEL" \
  --train_set_file "$DATA_DIR/recall/train.csv" --hard_negatives_file "$MINED" --teacher_scores_file "$TEACHER" \
  --distill_weight 1 --save_dir "$WORK/recall" --batch_size 32 --learning_rate 3e-5 --max_steps "$RECALL_STEPS" \
  --save_steps "$RECALL_STEPS" --epochs 100 --margin 0.2 --scale 30 --max_seq_length "$LEN" --warmup_proportion 0.1 \
  --eval_step 0 --logging_steps 10
done_step "$WORK/export/recall/inference.onnx" "$ENCODER" ||
  "$PYTHON" recall/export_model.py --model_name_or_path "$MODEL" --params_path "$ENCODER" \
    --output_path "$WORK/export/recall" --onnx
index_step distilled "$WORK/export/recall"

echo "done: ranker $WORK/export/ranker, recall encoder $WORK/export/recall,"
echo "      index 'distilled' in $DB (serve them: models ranker / encoder and search.collection in the server config)"
