"""User-facing errors and the one command-line wrapper that reports them.

Every problem a user can fix (a bad file, config key, checkpoint, device or command-line value) raises a
subclass of :class:`RHMNetError` whose message names the file or key and what is wrong. Entry points run
through :func:`run_cli`, which prints such errors as one line and returns the exit status; anything else
is a bug and keeps its traceback.

Exit status convention of every command: 0 success; 1 the run itself failed (e.g. a non-finite training
loss, outputs outside the faithfulness tolerances, a result that could not be written: read-only folder,
full disk); 2 bad input or usage (as argparse); 128 + N stopped by signal N after saving what is needed to
resume (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

RUN_FAILED = 1
USAGE_ERROR = 2


class RHMNetError(Exception):
    """A problem the user can fix; the message says which file, key or value and what is wrong."""

    exit_code = USAGE_ERROR
    label = "error"


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run an entry point's ``main(argv)``; report :class:`RHMNetError`, missing files (exit 2) and other
    operating-system errors, such as a full disk (exit 1), in one line."""
    try:
        return main(argv)
    except RHMNetError as exc:
        print(f"{exc.label}: {exc}", file=sys.stderr)
        return exc.exit_code
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as exc:  # the environment, not a bug: full disk, I/O error
        print(f"error: {exc}", file=sys.stderr)
        return RUN_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
