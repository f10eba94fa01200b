"""Command-line glue shared by every entry point."""

import sys
from collections.abc import Callable

from .errors import PipelineError


def run_cli(main: Callable[[], object]) -> None:
    """Run `main()`; errors meant for the user are printed as one line and exit with status 2."""
    try:
        main()
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
