#!/usr/bin/env bash
# Start the server (foreground), either way:
#   bash scripts/start_server.sh [config.yml] [extra flags]       every protocol, from a config (deploy/config.yml)
#   bash scripts/start_server.sh --model serving_server --port 8600 --thread 5 --ir_optim True
#                                  C++ Paddle Serving's form (python -m paddle_serving_server.serve ...):
#                                  brpc + HTTP General model on one port, from a serving_server/ directory
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
if [ "${1:-}" = "--model" ] || [ "${1:-}" = "start" ]; then
  exec "$PYTHON" -m deploy.serve "$@"
fi
CONFIG=${1:-deploy/config.yml}; shift || true
exec "$PYTHON" -m deploy.server --config "$CONFIG" "$@"
