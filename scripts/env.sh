# Sourced by the scripts: the project's Python, import path and thread settings.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="$ROOT/.venv/bin/python"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# 2 cores here: set thread counts explicitly (Paddle is much slower with its defaults)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
export MKL_NUM_THREADS="${MKL_NUM_THREADS:-$OMP_NUM_THREADS}"
export GLOG_minloglevel="${GLOG_minloglevel:-2}"
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}"
DATA_DIR="${DATA_DIR:-$ROOT/data}"
if [ ! -x "$PYTHON" ]; then
  echo "no .venv yet: run bash scripts/setup.sh first" >&2
  exit 1
fi

# run_py SCRIPT ARGS...: single process by default; GPUS="0,1,2,3" launches one process per GPU,
# NPROC=N launches N CPU processes (gloo) through paddle.distributed.launch.
run_py() {
  if [ -n "${GPUS:-}" ]; then
    "$PYTHON" -u -m paddle.distributed.launch --gpus "$GPUS" --log_dir "${LOG_DIR:-log}" "$@" --device gpu
  elif [ -n "${NPROC:-}" ] && [ "${NPROC}" -gt 1 ]; then
    OMP_NUM_THREADS=1 "$PYTHON" -u -m paddle.distributed.launch --nproc_per_node "$NPROC" --log_dir "${LOG_DIR:-log}" "$@"
  else
    "$PYTHON" -u "$@"
  fi
}
# MKL's fast code paths on AMD CPUs (see core/__init__.py); no effect on Intel
export MKL_DEBUG_CPU_TYPE="${MKL_DEBUG_CPU_TYPE:-5}"
