#!/usr/bin/env bash
# Package an exported model as serving_server/ + serving_client/ (Paddle Serving layout).
#   bash scripts/export_to_serving.sh [exported dir] [server dir] [client dir]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
"$PYTHON" deploy/export_to_serving.py \
  --dirname "${1:-output/pairwise}" \
  --model_filename inference.json \
  --params_filename inference.pdiparams \
  --server_path "${2:-serving_server}" \
  --client_path "${3:-serving_client}" \
  --fetch_alias_names predict \
  --feed_alias_names input_ids,token_type_ids
