#!/usr/bin/env bash
# Start the server (foreground): bash scripts/start_server.sh [config.yml] [extra flags]
# It answers Pipeline HTTP/gRPC, General model HTTP, /v1/rerank, /health and /metrics (see README).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
CONFIG=${1:-deploy/config.yml}; shift || true
exec "$PYTHON" -m deploy.server --config "$CONFIG" "$@"
