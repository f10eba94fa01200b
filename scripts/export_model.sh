#!/usr/bin/env bash
# Export a checkpoint to a static graph for Paddle Inference.
#   bash scripts/export_model.sh [checkpoint dir] [output dir] [pairwise|cross_encoder]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
KIND=${3:-pairwise}
case "$KIND" in
  pairwise) SCRIPT=ernie_matching/export_model.py; DEF=checkpoints/pairwise/model_best ;;
  cross_encoder) SCRIPT=cross_encoder/export_model.py; DEF=checkpoints/cross_encoder/model_best ;;
  *) echo "kind must be pairwise or cross_encoder, got $KIND" >&2; exit 2 ;;
esac
"$PYTHON" -u "$SCRIPT" --params_path "${1:-$DEF}" --output_path "${2:-output/$KIND}"
