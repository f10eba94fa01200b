"""Code shared by the recall, ranking and deploy modules of the search pipeline."""

import os

# Paddle's CPU kernels use Intel MKL, which takes a slow generic code path on non-Intel CPUs
# unless told otherwise; on the AMD EPYC machines this project runs on, this setting makes
# matrix products about 3x faster (benchmarks/results/training_speed.md). It has no effect on
# Intel CPUs and must be set before Paddle loads MKL, hence here. Set it yourself to override.
os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
