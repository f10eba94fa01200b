"""cross_encoder module of the search pipeline."""

import core  # noqa: F401  (sets MKL_DEBUG_CPU_TYPE before anything loads Paddle)
