#!/usr/bin/env bash
# Recall quality and speed (benchmarks/recall_quality.py): BM25, zero-shot e5, in-batch-negative and
# SimCSE fine-tuned e5 on KUAKE-QTR and CSL; end-to-end NDCG@10 before/after re-ranking.
# Re-ranking uses the cross-encoder exported by scripts/bench_ranking_quality.sh (skipped without it).
#   bash scripts/bench_recall_quality.sh --batch_neg_steps 150 --simcse_steps 100
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
[ -f "$DATA_DIR/recall/dev.csv" ] || bash scripts/prepare_data.sh
"$PYTHON" -u benchmarks/recall_quality.py --data_dir "$DATA_DIR" "$@"
